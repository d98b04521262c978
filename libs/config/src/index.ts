export * from "./policy"
export * from "./topology"
export * from "./settings"
export * from "./routes"
