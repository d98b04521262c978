import { parseArgs, type ParseArgsConfig } from "node:util"
import { Either, Schema } from "effect"
import { Period } from "@backup-actions/config"
import { UsageError } from "./errors"
import { REPLICA_TAGS } from "./failover/replicas"
import { longestNewId, type FailoverRequest, type FailoverSource } from "./failover/request"
import { parseS3Url, type S3Location } from "./s3-url"

/** Options every command takes. */
export interface GlobalOptions {
  /** The JSON file that describes the stack (the local stack writes .local/stack.json). */
  readonly stackFile: string | undefined
  /** Show progress on stderr even when it is not a terminal. */
  readonly progress: boolean
}

export const REPORT_FORMATS = ["text", "json", "csv", "html"] as const
export type ReportFormat = (typeof REPORT_FORMATS)[number]

export type Command =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Status"; readonly recoveryPoint: string | undefined; readonly json: boolean }
  | { readonly _tag: "Report"; readonly day: string | undefined; readonly format: ReportFormat; readonly open: boolean }
  | {
      readonly _tag: "Replay"
      readonly from: Date
      readonly to: Date
      readonly detailType: string | undefined
      readonly recoveryPoint: string | undefined
    }
  | { readonly _tag: "Verify"; readonly archive: S3Location; readonly tier: RestoreTier }
  | { readonly _tag: "Restore"; readonly archive: S3Location; readonly target: RestoreTarget; readonly tier: RestoreTier }
  | ({ readonly _tag: "Failover" } & FailoverRequest)
  | {
      readonly _tag: "Drill"
      /** The period from the command line; otherwise the policy's drill.every. */
      readonly every: string | undefined
      /** One artifact drilled now, whatever the schedule says. */
      readonly artifact: S3Location | undefined
      readonly resource: string | undefined
      readonly days: number
      readonly tier: RestoreTier
      /** Servers (URLs naming no database) that dumps are drilled on, one per engine family. */
      readonly scratchDatabases: ReadonlyArray<string>
      readonly json: boolean
    }

/** How fast S3 brings an object back from GLACIER or DEEP_ARCHIVE (RestoreObject's tier). */
export const RESTORE_TIERS = ["Expedited", "Standard", "Bulk"] as const
export type RestoreTier = (typeof RESTORE_TIERS)[number]

/** Where `restore` writes, one per kind of artifact. */
export type RestoreTarget =
  | { readonly _tag: "Directory"; readonly directory: string }
  | { readonly _tag: "Snapshot"; readonly kmsKeyId: string | undefined }
  | { readonly _tag: "Database"; readonly url: string }
  | { readonly _tag: "Table"; readonly table: string }
  | { readonly _tag: "Image"; readonly name: string | undefined }

export interface Invocation {
  readonly command: Command
  readonly options: GlobalOptions
}

const GLOBAL_HELP = `Options for every command:
  --stack <file>    the stack description (\`npm start\` writes .local/stack.json); without it the
                    environment is read: BACKUP_ACTIONS_BUS, BACKUP_ACTIONS_BUCKET,
                    BACKUP_ACTIONS_LEDGER_TABLE, AWS_REGION
  --progress        progress on stderr even when stderr is not a terminal
  -h, --help        this help

Credentials and the endpoint are the AWS SDK's own settings (AWS_PROFILE, AWS_ACCESS_KEY_ID,
AWS_ENDPOINT_URL, ...); a stack file may also name an endpoint.

Exit codes: 0 done, 1 the operation found a problem, 2 the command line or the stack is wrong.`

export const HELP: Readonly<Record<string, string>> = {
  main: `Usage: backup-actions <command> [options]

Commands:
  status     the ledger's steps per recovery point
  report     the latest run report, or a day's
  replay     replay the bus archive over a time window
  verify     re-read an archive and check it against its manifest
  restore    bring an archive back: a directory, an EBS snapshot, a database, a table or an AMI
  drill      restore each protected resource's newest artifact into scratch, verify it, time it
  failover   bring the newest DR replica of a DB instance, Aurora cluster or volume up in the DR account and region

Run \`backup-actions <command> --help\` for a command's options.

${GLOBAL_HELP}`,
  status: `Usage: backup-actions status [--recovery-point <arn>] [--json]

Lists, per recovery point, every step in the ledger: its state, attempts, reason and where its
artifact is.

  --recovery-point <arn>   only this recovery point
  --json                   one JSON array instead of a table

${GLOBAL_HELP}`,
  report: `Usage: backup-actions report [--day yyyy-mm-dd] [--format text|json|csv|html] [--open]

Prints the latest run report (reports/runs/<run>/ in the artifact bucket), or the day's report
(reports/daily/<day>/) with --day.

  --day <yyyy-mm-dd>   the day's report instead of the latest run's
  --format <format>    text (a summary, the default), json, csv or html as stored
  --open               write the HTML report to a temporary file and print its path

${GLOBAL_HELP}`,
  replay: `Usage: backup-actions replay --from <iso time> --to <iso time> [--type <detail-type>] [--recovery-point <arn>]

Replays the bus's archive into the bus and waits until the replay completed, failed or was
cancelled. The services' ledger makes finished steps no-ops and runs failed steps again.

  --from <time>            start of the window (ISO 8601, e.g. 2026-11-22T10:00:00Z)
  --to <time>              end of the window
  --type <detail-type>     only to the rules that take this detail-type, e.g. "Archive Completed"
  --recovery-point <arn>   only events about this recovery point (through temporary copies of
                           the rules whose pattern also names the recovery point)

Both filters are applied through the replay's rules (FilterArns).

${GLOBAL_HELP}`,
  verify: `Usage: backup-actions verify <s3://bucket/key of an archive> [--tier Expedited|Standard|Bulk]

Re-reads the archive and its manifest.ndjson beside it: recomputes the composite SHA-256 over
the archive's parts and compares it with the manifest's, then decompresses the archive and
checks its content (a raw image: every listed range's SHA-256 and zeros elsewhere; a tar:
every entry's type, mode, owner, size and SHA-256). Exit code 1 names what differs.

--tier <tier>      an archive in GLACIER, DEEP_ARCHIVE or an Intelligent-Tiering archive
                   tier is first brought back with RestoreObject at this retrieval tier
                   (default Standard)

${GLOBAL_HELP}`,
  restore: `Usage: backup-actions restore <s3://bucket/key of an archive> --to <directory>
       backup-actions restore <s3://bucket/key of an archive> --to-snapshot [--kms-key <key>]
       backup-actions restore <s3://bucket/key of a dump> --to-database <url>
       backup-actions restore <s3://bucket/key of an export> --to-table <name>
       backup-actions restore <s3://bucket/key of an AMI export> --to-image [--image-name <name>]

--to <directory>     a tar archive: extracted with GNU tar (modes, numeric owners, links, holes),
                     then every file checked against the manifest
--to-snapshot        a raw image: written as a new EBS snapshot through the EBS direct APIs
                     (every block the manifest lists, each with its SHA-256), read back and
                     checked against the manifest; prints the new snapshot id
--kms-key <key>      encrypt the new snapshot with this KMS key (the source's encryption is
                     kept either way)
--to-database <url>  a DB dump: loaded into a running PostgreSQL, MariaDB or MySQL server
                     (postgresql://... or mysql://...), then row counts and per-table checksums
                     compared with those recorded at dump time
--to-table <name>    a DynamoDB Parquet export: written into a new table, then the item count
                     and checksum compared with the export's
--to-image           an AMI export: registered as a new AMI from snapshots restored out of its
                     archives, or restored from its store-image object
--image-name <name>  the new AMI's name (default: the exported image's name with a
                     "-restored-<time>" suffix)
--tier <tier>        an object in GLACIER, DEEP_ARCHIVE or an Intelligent-Tiering archive tier
                     is first brought back with RestoreObject at this retrieval tier
                     (Expedited, Standard, Bulk; default Standard); progress and an ETA are
                     shown while S3 restores it

The archive's composite checksum is checked as it streams; memory stays bounded whatever its size.

${GLOBAL_HELP}`,
  drill: `Usage: backup-actions drill [--every <period>] [--days <n>] [--tier <tier>] [--scratch-database <url>]... [--json]
       backup-actions drill --artifact <s3://bucket/key> [--resource <arn>] [--scratch-database <url>]...

A restore drill: the newest artifact of each protected resource (from the outcomes the reporter
recorded over the last --days days) whose last drill is older than the period is restored into
scratch (a raw image into an EBS snapshot, a tar into a directory, a DynamoDB export into a
table, an AMI export into an AMI, a DB dump into new databases on a scratch server), checked
against its manifest, and the scratch deleted on every outcome. Each drill's result and RTO (seconds from its start until the restored copy was
verified) go to the ledger, where the reporter shows them per source; the table of every
source's last drill is printed. Exit code 1 when a drill run now failed.

  --every <period>     drill a resource whose last drill is older than this (e.g. 7d, 12h);
                       default: the policy's drill.every (BACKUP_ACTIONS_POLICY)
  --days <n>           how far back to look for artifacts (default 31)
  --tier <tier>        retrieval tier for artifacts in GLACIER or DEEP_ARCHIVE (default Standard)
  --artifact <url>     drill this artifact now, whatever the schedule
  --resource <arn>     with --artifact: the protected resource it is a backup of
  --scratch-database <url>
                       a PostgreSQL or MySQL/MariaDB server dumps are drilled on (a URL naming
                       no database; the password from PGPASSWORD, MYSQL_PWD, ~/.pgpass or
                       ~/.my.cnf rather than the URL); repeat for each engine; without one,
                       dumps are recorded as skipped
  --json               the drills as JSON instead of a table

Run it on a schedule (cron, or an EventBridge Scheduler target) with the services' policy.

${GLOBAL_HELP}`,
  failover: `Usage: backup-actions failover --source <arn> [--region <DR region>] [--instance-class <class>]
                            [--new-instance-id <id>] [--db-subnet-group <name>]
                            [--security-group-ids <sg-id,...>] [--zone <availability zone>]
                            [--role-arn <DR role> --external-id <id>] [--json]

Pilot-light failover: finds the newest DR replica of the source that the sharer made (by its
tags: backup-actions:managed-by=sharer and backup-actions:source-resource, or source-arn for one
recovery point) in the DR account and region, and brings it up there:

  an RDS DB instance (arn:...:rds:...:db:<id>) or DB snapshot (arn:...:rds:...:snapshot:<id>):
      RestoreDBInstanceFromDBSnapshot into a new DB instance, then waits until it is available
  an Aurora DB cluster (arn:...:rds:...:cluster:<id>) or cluster snapshot (...:cluster-snapshot:<id>):
      RestoreDBClusterFromSnapshot into a new cluster, waits until it is available, then
      CreateDBInstance of one writer instance in it (<cluster id>-writer) and waits for that too
  an EBS volume (arn:...:ec2:...:volume/<id>) or snapshot (arn:...:ec2:...::snapshot/<id>):
      CreateVolume from the replica in --zone, then waits until it is available

Prints what it made, the endpoint (a cluster's writer endpoint), and the recovery point objective achieved: the replica's age
(now minus the time its source snapshot was taken). Exit code 1 when there is no replica.

  --source <arn>             the protected DB instance, Aurora cluster or volume, or one of its snapshots
  --region <region>          the DR region (default: the stack's region)
  --instance-class <class>   the new DB instance's class (default db.t4g.micro; for Aurora the
                             writer's, default db.t4g.medium, the smallest class Aurora runs)
  --new-instance-id <id>     the new DB instance's identifier, or the new Aurora cluster's
                             (default failover-<source>-<time>)
  --db-subnet-group <name>   RDS, Aurora: the new instance's or cluster's DB subnet group (default: the default VPC's)
  --security-group-ids <ids> RDS, Aurora: its VPC security groups, comma-separated (default: the VPC's default)
  --zone <zone>              EBS: the availability zone of the new volume (required)
  --role-arn <arn>           a role in the DR account to assume (else the caller's own account)
  --external-id <id>         the external id the role's trust policy requires
  --json                     one JSON object on stdout instead of text

${GLOBAL_HELP}`
}

const GLOBAL_OPTIONS = {
  stack: { type: "string" },
  progress: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false }
} as const satisfies ParseArgsConfig["options"]

/** node:util parseArgs, its exceptions turned into a usage error of this command. */
const parse = <const Options extends NonNullable<ParseArgsConfig["options"]>>(command: string, args: ReadonlyArray<string>, options: Options) =>
  Either.try({
    try: () => parseArgs({ args: [...args], options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true }),
    catch: (error) => new UsageError({ message: error instanceof Error ? error.message : String(error), command })
  })

const parseTime = (command: string, option: string, text: string | undefined) => {
  if (text === undefined) return Either.left(new UsageError({ message: `--${option} <iso time> is required`, command }))
  const millis = Date.parse(text)
  return Number.isNaN(millis) || !/^\d{4}-\d{2}-\d{2}/.test(text)
    ? Either.left(new UsageError({ message: `--${option} "${text}" is not an ISO 8601 time (e.g. 2026-11-22T10:00:00Z)`, command }))
    : Either.right(new Date(millis))
}

const isDay = (text: string): boolean => /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) && new Date(`${text}T00:00:00Z`).toISOString().startsWith(text)

const noPositionals = (command: string, positionals: ReadonlyArray<string>) =>
  positionals.length === 0 ? Either.right(undefined) : Either.left(new UsageError({ message: `unexpected argument "${positionals[0]}"`, command }))

const oneArchive = (command: string, positionals: ReadonlyArray<string>) => {
  if (positionals.length === 0) return Either.left(new UsageError({ message: "the archive's s3://bucket/key is required", command }))
  if (positionals.length > 1) return Either.left(new UsageError({ message: `one archive at a time; unexpected "${positionals[1]}"`, command }))
  return Either.mapLeft(parseS3Url(positionals[0] ?? ""), (reason) => new UsageError({ message: reason, command }))
}

/** Reads a failover's source ARN: which kind of resource, and which tag its replicas carry it in. */
export const parseFailoverSource = (arn: string): Either.Either<FailoverSource, string> => {
  const db = /^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:db:([A-Za-z][A-Za-z0-9-]*)$/.exec(arn)
  if (db !== null) return Either.right({ arn, kind: "RDS", matchTag: REPLICA_TAGS.sourceResource, resourceId: db[1] })
  if (/^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:snapshot:.+$/.test(arn)) return Either.right({ arn, kind: "RDS", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  const cluster = /^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:cluster:([A-Za-z][A-Za-z0-9-]*)$/.exec(arn)
  if (cluster !== null) return Either.right({ arn, kind: "Aurora", matchTag: REPLICA_TAGS.sourceResource, resourceId: cluster[1] })
  if (/^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:.+$/.test(arn)) return Either.right({ arn, kind: "Aurora", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  if (/^arn:[^:]+:ec2:[a-z0-9-]+:\d{12}:volume\/vol-[0-9a-f]+$/.test(arn)) {
    return Either.right({ arn, kind: "EBS", matchTag: REPLICA_TAGS.sourceResource, resourceId: undefined })
  }
  if (/^arn:[^:]+:ec2:[a-z0-9-]+:\d*:snapshot\/snap-[0-9a-f]+$/.test(arn)) return Either.right({ arn, kind: "EBS", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  return Either.left(
    `--source "${arn}" is neither a DB instance or DB snapshot ARN (arn:aws:rds:<region>:<account>:db:<id>, ...:snapshot:<id>), an Aurora DB cluster or cluster snapshot ARN (...:cluster:<id>, ...:cluster-snapshot:<id>), nor an EBS volume or snapshot ARN`
  )
}

/** `--tier`: Standard unless named; a wrong name is a usage error that lists the right ones. */
const tierOf = (command: string, value: string | undefined): Either.Either<RestoreTier, UsageError> => {
  if (value === undefined) return Either.right("Standard")
  const tier = RESTORE_TIERS.find((candidate) => candidate.toLowerCase() === value.toLowerCase())
  return tier === undefined ? Either.left(new UsageError({ message: `--tier "${value}" is not a retrieval tier (${RESTORE_TIERS.join(", ")})`, command })) : Either.right(tier)
}

const globalsOf = (values: { readonly stack?: string | undefined; readonly progress?: boolean | undefined }): GlobalOptions => ({
  stackFile: values.stack,
  progress: values.progress === true
})

/**
 * Reads the command line (without the node and script paths). Every mistake is a UsageError
 * that names the option, so that the user sees what to change.
 */
export const parseCommandLine = (argv: ReadonlyArray<string>): Either.Either<Invocation, UsageError> =>
  Either.gen(function* () {
    const [name, ...rest] = argv
    const helpOnly = (text: string): Invocation => ({ command: { _tag: "Help", text }, options: { stackFile: undefined, progress: false } })
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? rest[0] : undefined
      return helpOnly(topic !== undefined && HELP[topic] !== undefined ? (HELP[topic] ?? "") : (HELP["main"] ?? ""))
    }
    switch (name) {
      case "status": {
        const { values, positionals } = yield* parse(name, rest, { "recovery-point": { type: "string" }, json: { type: "boolean", default: false } })
        if (values.help) return helpOnly(HELP["status"] ?? "")
        yield* noPositionals(name, positionals)
        return { command: { _tag: "Status", recoveryPoint: values["recovery-point"], json: values.json === true }, options: globalsOf(values) }
      }
      case "report": {
        const { values, positionals } = yield* parse(name, rest, {
          day: { type: "string" },
          format: { type: "string", default: "text" },
          open: { type: "boolean", default: false }
        })
        if (values.help) return helpOnly(HELP["report"] ?? "")
        yield* noPositionals(name, positionals)
        const format = REPORT_FORMATS.find((known) => known === values.format)
        if (format === undefined) {
          return yield* Either.left(new UsageError({ message: `--format must be one of ${REPORT_FORMATS.join(", ")}, not "${values.format}"`, command: name }))
        }
        if (values.day !== undefined && !isDay(values.day)) {
          return yield* Either.left(new UsageError({ message: `--day "${values.day}" is not a day as yyyy-mm-dd`, command: name }))
        }
        return { command: { _tag: "Report", day: values.day, format, open: values.open === true }, options: globalsOf(values) }
      }
      case "replay": {
        const { values, positionals } = yield* parse(name, rest, {
          from: { type: "string" },
          to: { type: "string" },
          type: { type: "string" },
          "recovery-point": { type: "string" }
        })
        if (values.help) return helpOnly(HELP["replay"] ?? "")
        yield* noPositionals(name, positionals)
        const from = yield* parseTime(name, "from", values.from)
        const to = yield* parseTime(name, "to", values.to)
        if (from.getTime() > to.getTime()) {
          return yield* Either.left(new UsageError({ message: `--from (${from.toISOString()}) is after --to (${to.toISOString()})`, command: name }))
        }
        return {
          command: { _tag: "Replay", from, to, detailType: values.type, recoveryPoint: values["recovery-point"] },
          options: globalsOf(values)
        }
      }
      case "verify": {
        const { values, positionals } = yield* parse(name, rest, { tier: { type: "string" } })
        if (values.help) return helpOnly(HELP["verify"] ?? "")
        const archive = yield* oneArchive(name, positionals)
        const tier = yield* tierOf(name, values.tier)
        return { command: { _tag: "Verify", archive, tier }, options: globalsOf(values) }
      }
      case "restore": {
        const { values, positionals } = yield* parse(name, rest, {
          to: { type: "string" },
          "to-snapshot": { type: "boolean", default: false },
          "kms-key": { type: "string" },
          "to-database": { type: "string" },
          "to-table": { type: "string" },
          "to-image": { type: "boolean", default: false },
          "image-name": { type: "string" },
          tier: { type: "string" }
        })
        if (values.help) return helpOnly(HELP["restore"] ?? "")
        const archive = yield* oneArchive(name, positionals)
        const tier = yield* tierOf(name, values.tier)
        const chosen = [
          values.to === undefined ? [] : ["--to"],
          values["to-snapshot"] === true ? ["--to-snapshot"] : [],
          values["to-database"] === undefined ? [] : ["--to-database"],
          values["to-table"] === undefined ? [] : ["--to-table"],
          values["to-image"] === true ? ["--to-image"] : []
        ].flat()
        if (chosen.length > 1) {
          return yield* Either.left(new UsageError({ message: `${chosen.join(" and ")} exclude each other: choose one`, command: name }))
        }
        const needs = (option: string, value: string | undefined): Either.Either<string, UsageError> =>
          value === undefined || value.length === 0 ? Either.left(new UsageError({ message: `${option} needs a value`, command: name })) : Either.right(value)
        const only = (option: string, value: unknown, target: string): Either.Either<void, UsageError> =>
          value !== undefined && chosen[0] !== target ? Either.left(new UsageError({ message: `${option} goes with ${target}`, command: name })) : Either.right(undefined)
        yield* only("--kms-key", values["kms-key"], "--to-snapshot")
        yield* only("--image-name", values["image-name"], "--to-image")
        const target: RestoreTarget | undefined =
          chosen[0] === "--to"
            ? { _tag: "Directory", directory: yield* needs("--to", values.to) }
            : chosen[0] === "--to-snapshot"
              ? { _tag: "Snapshot", kmsKeyId: values["kms-key"] === undefined ? undefined : yield* needs("--kms-key", values["kms-key"]) }
              : chosen[0] === "--to-database"
                ? { _tag: "Database", url: yield* needs("--to-database", values["to-database"]) }
                : chosen[0] === "--to-table"
                  ? { _tag: "Table", table: yield* needs("--to-table", values["to-table"]) }
                  : chosen[0] === "--to-image"
                    ? { _tag: "Image", name: values["image-name"] === undefined ? undefined : yield* needs("--image-name", values["image-name"]) }
                    : undefined
        if (target === undefined) {
          return yield* Either.left(
            new UsageError({
              message: "where to? --to <directory> for a tar archive, --to-snapshot for a raw image, --to-database <url> for a DB dump, --to-table <name> for a DynamoDB export, --to-image for an AMI",
              command: name
            })
          )
        }
        return { command: { _tag: "Restore", archive, target, tier }, options: globalsOf(values) }
      }
      case "failover": {
        const { values, positionals } = yield* parse(name, rest, {
          source: { type: "string" },
          region: { type: "string" },
          "instance-class": { type: "string" },
          "new-instance-id": { type: "string" },
          "db-subnet-group": { type: "string" },
          "security-group-ids": { type: "string" },
          zone: { type: "string" },
          "role-arn": { type: "string" },
          "external-id": { type: "string" },
          json: { type: "boolean", default: false }
        })
        if (values.help) return helpOnly(HELP["failover"] ?? "")
        yield* noPositionals(name, positionals)
        if (values.source === undefined) {
          return yield* Either.left(
            new UsageError({ message: "--source <arn of the protected DB instance, Aurora cluster, volume or one of their snapshots> is required", command: name })
          )
        }
        const source = yield* Either.mapLeft(parseFailoverSource(values.source), (reason) => new UsageError({ message: reason, command: name }))
        if (source.kind === "EBS" && values.zone === undefined) {
          return yield* Either.left(new UsageError({ message: "an EBS source needs --zone <availability zone> for the new volume", command: name }))
        }
        if (values["external-id"] !== undefined && values["role-arn"] === undefined) {
          return yield* Either.left(new UsageError({ message: "--external-id is only used with --role-arn", command: name }))
        }
        if (values["role-arn"] !== undefined && !/^arn:[^:]+:iam::\d{12}:role\/.+$/.test(values["role-arn"])) {
          return yield* Either.left(new UsageError({ message: `--role-arn "${values["role-arn"]}" is not an IAM role ARN`, command: name }))
        }
        const newId = values["new-instance-id"]
        const longestId = longestNewId(source.kind)
        if (newId !== undefined && !new RegExp(`^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,${longestId - 1}}$`).test(newId)) {
          return yield* Either.left(
            new UsageError({
              message: `--new-instance-id "${newId}" is not a ${source.kind === "Aurora" ? "DB cluster" : "DB instance"} identifier (a letter, then letters, digits and single hyphens, at most ${longestId})`,
              command: name
            })
          )
        }
        if (newId !== undefined && newId.endsWith("-")) {
          return yield* Either.left(new UsageError({ message: `--new-instance-id "${newId}" must not end with a hyphen`, command: name }))
        }
        const subnetGroup = values["db-subnet-group"]
        const groups = (values["security-group-ids"] ?? "").split(",").map((id) => id.trim()).filter((id) => id !== "")
        if (source.kind === "EBS" && (subnetGroup !== undefined || groups.length > 0)) {
          return yield* Either.left(
            new UsageError({ message: "--db-subnet-group and --security-group-ids are for a DB instance or cluster; a volume has no network of its own", command: name })
          )
        }
        if (subnetGroup !== undefined && !/^[A-Za-z0-9 ._-]{1,255}$/.test(subnetGroup)) {
          return yield* Either.left(new UsageError({ message: `--db-subnet-group "${subnetGroup}" is not a DB subnet group name`, command: name }))
        }
        const badGroup = groups.find((id) => !/^sg-[0-9a-f]{8,17}$/.test(id))
        if (badGroup !== undefined) {
          return yield* Either.left(new UsageError({ message: `--security-group-ids: "${badGroup}" is not a security group id (sg-...)`, command: name }))
        }
        return {
          command: {
            _tag: "Failover",
            source,
            instanceClass: values["instance-class"] ?? (source.kind === "Aurora" ? "db.t4g.medium" : "db.t4g.micro"),
            newInstanceId: newId,
            dbSubnetGroup: subnetGroup,
            securityGroupIds: groups,
            region: values.region,
            zone: values.zone,
            roleArn: values["role-arn"],
            externalId: values["external-id"],
            json: values.json === true
          },
          options: globalsOf(values)
        }
      }
      case "drill": {
        const { values, positionals } = yield* parse(name, rest, {
          every: { type: "string" },
          days: { type: "string", default: "31" },
          tier: { type: "string" },
          artifact: { type: "string" },
          resource: { type: "string" },
          "scratch-database": { type: "string", multiple: true },
          json: { type: "boolean", default: false }
        })
        if (values.help) return helpOnly(HELP["drill"] ?? "")
        yield* noPositionals(name, positionals)
        const usage = (message: string) => Either.left(new UsageError({ message, command: name }))
        if (values.every !== undefined && Either.isLeft(Schema.decodeUnknownEither(Period)(values.every))) {
          return yield* usage(`--every "${values.every}" is not a period: a whole number then m, h or d, e.g. 7d`)
        }
        const days = Number(values.days)
        if (!Number.isInteger(days) || days < 1 || days > 366) return yield* usage(`--days "${values.days}" is not a number of days from 1 to 366`)
        const artifact = values.artifact === undefined ? undefined : yield* Either.mapLeft(parseS3Url(values.artifact), (reason) => new UsageError({ message: `--artifact: ${reason}`, command: name }))
        if (values.resource !== undefined && artifact === undefined) return yield* usage("--resource names the resource of the --artifact drilled: give --artifact too")
        if (artifact !== undefined && values.every !== undefined) return yield* usage("--artifact drills now, whatever the schedule: leave --every out")
        return {
          command: { _tag: "Drill", every: values.every, artifact, resource: values.resource, days, tier: yield* tierOf(name, values.tier), scratchDatabases: values["scratch-database"] ?? [], json: values.json === true },
          options: globalsOf(values)
        }
      }
      default:
        return yield* Either.left(new UsageError({ message: `unknown command "${name}" (status, report, replay, verify, restore, drill, failover)` }))
    }
  })
