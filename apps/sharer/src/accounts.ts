import { AccountAccess } from "@backup-actions/aws"

/** How the sharer's calls in the destination account name their caller in its CloudTrail. */
export const ASSUMED_ROLE_CALLER = "backup-actions-sharer"

/** The sharer's access to the destination accounts, its sessions named for it. */
export const SharerAccountAccess = AccountAccess.layer(ASSUMED_ROLE_CALLER)
