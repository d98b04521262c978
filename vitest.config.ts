import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Workspace packages are TypeScript sources: always transform them, never load them natively.
    server: { deps: { inline: [/@backup-actions\//, /\/(libs|apps|tools)\//] } },
    reporters: ["default"]
  }
})
