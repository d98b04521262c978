import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { S3Location } from "./common"

/** The reporter wrote a report. */
export const ReportPublished = defineContract({
  source: OWNED_SOURCE,
  detailType: "Report Published",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    period: Schema.Literal("run", "day"),
    json: S3Location,
    csv: Schema.optional(S3Location),
    html: Schema.optional(S3Location),
    failures: Schema.Number,
    total: Schema.Number
  })
})
