#!/usr/bin/env node
// The operator CLI runs from its TypeScript sources: tsx is registered first, from beside this file.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
