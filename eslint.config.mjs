import nx from "@nx/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default [
  { ignores: ["**/node_modules/**", "**/dist/**", "**/.nx/**", "**/cdk.out/**", ".local/**", ".venv/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...nx.configs["flat/base"],
  {
    files: ["**/*.ts", "**/*.mjs"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      "@nx/enforce-module-boundaries": [
        "error",
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: "type:app", onlyDependOnLibsWithTags: ["type:lib"] },
            { sourceTag: "type:lib", onlyDependOnLibsWithTags: ["type:lib"] },
            { sourceTag: "type:tool", onlyDependOnLibsWithTags: ["type:lib", "type:app"] },
            { sourceTag: "type:infra", onlyDependOnLibsWithTags: ["type:lib", "type:app"] }
          ]
        }
      ]
    }
  },
  {
    files: ["**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } }
  }
]
