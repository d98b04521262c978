export * from "./manifest"
export * from "./raw-check"
export * from "./tar-scan"
export * from "./tree-check"
