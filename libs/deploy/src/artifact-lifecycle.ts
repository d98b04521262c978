import { Duration } from "aws-cdk-lib"
import * as s3 from "aws-cdk-lib/aws-s3"
import { COLD_STORAGE_TAG } from "@backup-actions/config"
import type { DeployConfig } from "./deploy-config"

/**
 * The artifact bucket's lifecycle. Everything under `archives/` expires together (archives and
 * their manifests), but only objects tagged for cold storage (the archives, tagged as their
 * upload is created) move into GLACIER and DEEP_ARCHIVE: a lifecycle filter cannot leave out
 * `manifest.ndjson` by its suffix, so the transitions filter on the tag. Manifests and documents
 * such as an AMI's image.json stay instantly readable, so a reader learns what an archive is and
 * how big before asking for it to be restored. Reports expire after 400 days.
 */
export const artifactLifecycleRules = (lifecycle: DeployConfig["bucket"]["lifecycle"]): Array<s3.LifecycleRule> => {
  const transitions: Array<s3.Transition> = [
    ...(lifecycle.glacierAfterDays === undefined ? [] : [{ storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.days(lifecycle.glacierAfterDays) }]),
    ...(lifecycle.deepArchiveAfterDays === undefined ? [] : [{ storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(lifecycle.deepArchiveAfterDays) }])
  ]
  return [
    {
      id: "archives",
      prefix: "archives/",
      ...(lifecycle.expireAfterDays === undefined ? {} : { expiration: Duration.days(lifecycle.expireAfterDays) }),
      abortIncompleteMultipartUploadAfter: Duration.days(7),
      noncurrentVersionExpiration: Duration.days(30)
    },
    // S3 takes no abort of incomplete uploads in a rule with a tag filter: the transitions have a rule of their own.
    ...(transitions.length === 0 ? [] : [{ id: "archives-cold-storage", prefix: "archives/", tagFilters: { [COLD_STORAGE_TAG.key]: COLD_STORAGE_TAG.value }, transitions }]),
    { id: "reports", prefix: "reports/", expiration: Duration.days(400) }
  ]
}
