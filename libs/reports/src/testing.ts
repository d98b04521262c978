/** Outcome and AWS Backup job events for the reporter's tests: not part of the report format. */
export * from "./fixtures"
