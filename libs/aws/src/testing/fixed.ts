import { Effect, Layer } from "effect"
import { AccountAccess, type AccountTarget, type RegionClients } from "../account-access"
import { ProtectedResources, type ResourceTags } from "../recovery-point-subject"

/** Fixed tags by resource ARN, none for any other resource: for tests that look nothing up. */
export const fixedProtectedResources = (tags: Readonly<Record<string, ResourceTags>> = {}) =>
  Layer.succeed(ProtectedResources, { tagsOf: (resourceArn) => Effect.succeed(tags[resourceArn] ?? {}) })

/** Fixed clients whatever the target: for tests that check requests against mocked clients. */
export const fixedAccountAccess = (make: (target: AccountTarget) => RegionClients) =>
  Layer.succeed(AccountAccess, { clients: (target) => Effect.sync(() => make(target)), check: () => Effect.void })
