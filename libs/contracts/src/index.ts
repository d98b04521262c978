export * from "./contract"
export * from "./aws-backup"
export * from "./owned"
export * from "./router"
