export * from "./entry"
export * from "./render"
export * from "./format"
export * from "./fixtures"
