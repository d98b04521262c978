import { Effect } from "effect"
import { RecoveryPoints } from "@backup-actions/aws"
import { isSourceGone } from "@backup-actions/contracts"
import { deleteSourceOnce } from "@backup-actions/consumer"
import { deleteAmiSource } from "./ami-store"
import type { ExportDetail, ExportKind, ExportSubject } from "./outcome"

/**
 * After a verified export is recorded, and only when the policy asks: deletes the recovery
 * point as its own ledger step (an AMI the way AMIs are deleted) and says in the outcome what
 * the deletion left. Nothing here runs before the export's outcome is in the ledger.
 */
export const deleteExportedSource = (subject: Pick<ExportSubject, "recoveryPointArn" | "backupVaultName" | "plan">, kind: ExportKind, outcome: ExportDetail) =>
  subject.plan.deleteSourceAfterVerify && outcome.status === "exported" && outcome.verified
    ? deleteSourceOnce(
        subject.recoveryPointArn,
        kind === "ami" ? deleteAmiSource(subject) : Effect.flatMap(RecoveryPoints, (points) => points.delete(subject))
      ).pipe(Effect.map((state): ExportDetail => ({ ...outcome, sourceDeleted: isSourceGone(state), sourceDeletion: state })))
    : Effect.succeed(outcome)
