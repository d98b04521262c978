import { assert, describe, it } from "@effect/vitest"
import { HeadObjectCommand, RestoreObjectCommand, S3Client, type HeadObjectCommandOutput, type StorageClass } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Duration, Effect, Exit, Fiber, Layer, TestClock } from "effect"
import { S3 } from "@backup-actions/aws"
import type { RestoreTier } from "./args"
import { ColdReads, RETRIEVAL_TIMES, bringBack, describeEta, ensureReadable, formatDuration, objectState } from "./cold-storage"

const ARCHIVE = { bucket: "artifacts", key: "archives/ebs/snap-0123456789abcdef0/direct/disk.img.zst" }
const MANIFEST = { bucket: "artifacts", key: "archives/ebs/snap-0123456789abcdef0/direct/manifest.ndjson" }

const archived = (storageClass: StorageClass): Partial<HeadObjectCommandOutput> => ({ StorageClass: storageClass, ContentLength: 10 })
const restoring = (storageClass: StorageClass): Partial<HeadObjectCommandOutput> => ({ StorageClass: storageClass, Restore: 'ongoing-request="true"' })
const restored = (storageClass: StorageClass): Partial<HeadObjectCommandOutput> => ({
  StorageClass: storageClass,
  Restore: 'ongoing-request="false", expiry-date="Fri, 04 Dec 2026 00:00:00 GMT"'
})

/** An S3 client whose answers each test sets, and the lines the wait shows. */
const mocked = (tier: RestoreTier) => {
  const client = new S3Client({ region: "us-east-1" })
  const mock = mockClient(client)
  const lines: Array<string> = []
  const layer = Layer.merge(
    Layer.succeed(S3, client),
    Layer.succeed(ColdReads, { tier, command: "verify", show: (line) => Effect.sync(() => void lines.push(line)) })
  )
  return { mock, lines, layer }
}

/** Runs the effect in a fiber and moves the test clock on by `step` whenever it waits, until it ends. */
const withClock = <A, E>(effect: Effect.Effect<A, E>, step: Duration.DurationInput, maxSteps = 1_000) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    for (let steps = 0; steps < maxSteps; steps += 1) {
      // The mocked client answers through promises: let them settle before the clock moves.
      for (let tick = 0; tick < 5; tick += 1) yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* done.value
      yield* TestClock.adjust(step)
    }
    return yield* Effect.die(new Error(`still running after ${maxSteps} steps`))
  })

describe("reading objects in cold storage", () => {
  it("tells an archived object, one being restored and a restored copy apart, and reads other classes directly", () => {
    // Act
    const states = [
      objectState(archived("GLACIER")),
      objectState(restoring("DEEP_ARCHIVE")),
      objectState(restored("GLACIER")),
      objectState({ StorageClass: "GLACIER_IR" }),
      objectState({ StorageClass: "STANDARD_IA" }),
      objectState({})
    ].map((state) => state._tag)
    // Assess
    assert.deepStrictEqual(states, ["Archived", "Restoring", "Readable", "Readable", "Readable", "Readable"])
  })

  it("tells an Intelligent-Tiering object in an archive tier from one in an access tier, by its ArchiveStatus", () => {
    // Act
    const states = [
      objectState({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "ARCHIVE_ACCESS" }),
      objectState({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "DEEP_ARCHIVE_ACCESS", Restore: 'ongoing-request="true"' }),
      objectState({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "ARCHIVE_ACCESS", Restore: 'ongoing-request="false"' }),
      objectState({ StorageClass: "INTELLIGENT_TIERING" })
    ]
    // Assess
    assert.deepStrictEqual(states, [
      { _tag: "Archived", storageClass: "INTELLIGENT_TIERING/ARCHIVE_ACCESS" },
      { _tag: "Restoring", storageClass: "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS" },
      { _tag: "Readable" },
      { _tag: "Readable" }
    ])
  })

  it("shows the rest of the typical time as the ETA, then how long it still waits once past it", () => {
    // Prepare
    const standard = RETRIEVAL_TIMES.GLACIER.Standard
    const deep = RETRIEVAL_TIMES.DEEP_ARCHIVE.Bulk
    assert.isDefined(standard)
    assert.isDefined(deep)
    // Act
    const etas = [
      describeEta(standard, Duration.minutes(20)),
      describeEta(standard, Duration.hours(4)),
      describeEta(standard, Duration.hours(6)),
      describeEta(deep, Duration.hours(1))
    ]
    // Assess
    assert.deepStrictEqual(etas, ["ETA 2 h 40 min–4 h 40 min", "ETA within 1 h", "slower than the typical 3 h–5 h; waiting at most 6 h more", "ETA within 47 h"])
    assert.deepStrictEqual([formatDuration(Duration.seconds(40)), formatDuration(Duration.minutes(12)), formatDuration(Duration.minutes(185))], ["40 s", "12 min", "3 h 05 min"])
  })

  it.effect("restores a GLACIER object at the chosen tier, shows what it waits for with an ETA at every poll, then carries on", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, lines, layer } = mocked("Bulk")
      mock
        .on(HeadObjectCommand)
        .resolvesOnce(archived("GLACIER"))
        .resolvesOnce(restoring("GLACIER"))
        .resolvesOnce(restoring("GLACIER"))
        .resolvesOnce(restoring("GLACIER"))
        .resolves(restored("GLACIER"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      const exit = yield* withClock(Effect.exit(ensureReadable(ARCHIVE).pipe(Effect.provide(layer))), "5 minutes")
      // Assess
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(
        mock.commandCalls(RestoreObjectCommand).map((call) => call.args[0].input),
        [{ Bucket: ARCHIVE.bucket, Key: ARCHIVE.key, RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: "Bulk" } } }]
      )
      assert.strictEqual(mock.commandCalls(HeadObjectCommand).length, 5)
      assert.deepStrictEqual(lines, [
        `asked S3 to restore s3://${ARCHIVE.bucket}/${ARCHIVE.key} from GLACIER (Bulk retrieval, typically 5 h–12 h)`,
        `waiting for S3 to restore s3://${ARCHIVE.bucket}/${ARCHIVE.key} from GLACIER (Bulk retrieval, typically 5 h–12 h): 0 s so far, ETA 5 h–12 h`,
        `waiting for S3 to restore s3://${ARCHIVE.bucket}/${ARCHIVE.key} from GLACIER (Bulk retrieval, typically 5 h–12 h): 5 min so far, ETA 4 h 55 min–11 h 55 min`,
        `waiting for S3 to restore s3://${ARCHIVE.bucket}/${ARCHIVE.key} from GLACIER (Bulk retrieval, typically 5 h–12 h): 10 min so far, ETA 4 h 50 min–11 h 50 min`
      ])
    })
  )

  it.effect("asks for a DEEP_ARCHIVE restore at the Standard tier by default", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Standard")
      mock.on(HeadObjectCommand).resolvesOnce(archived("DEEP_ARCHIVE")).resolves(restored("DEEP_ARCHIVE"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      yield* ensureReadable(ARCHIVE).pipe(Effect.provide(layer))
      // Assess
      assert.deepStrictEqual(mock.commandCalls(RestoreObjectCommand)[0]?.args[0].input.RestoreRequest, { Days: 2, GlacierJobParameters: { Tier: "Standard" } })
    })
  )

  it.effect("restores an object in Intelligent-Tiering's Archive Access tier without Days, which S3 refuses there, and refuses Expedited from Deep Archive Access", () =>
    Effect.gen(function* () {
      // Prepare
      const archiveAccess = mocked("Expedited")
      archiveAccess.mock
        .on(HeadObjectCommand)
        .resolvesOnce({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "ARCHIVE_ACCESS" })
        .resolves({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "ARCHIVE_ACCESS", Restore: 'ongoing-request="false"' })
      archiveAccess.mock.on(RestoreObjectCommand).resolves({})
      const deep = mocked("Expedited")
      deep.mock.on(HeadObjectCommand).resolves({ StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "DEEP_ARCHIVE_ACCESS" })
      // Act
      yield* ensureReadable(ARCHIVE).pipe(Effect.provide(archiveAccess.layer))
      const refused = yield* Effect.flip(ensureReadable(ARCHIVE).pipe(Effect.provide(deep.layer)))
      // Assess
      assert.deepStrictEqual(archiveAccess.mock.commandCalls(RestoreObjectCommand)[0]?.args[0].input.RestoreRequest, { GlacierJobParameters: { Tier: "Expedited" } })
      assert.include(archiveAccess.lines[0] ?? "", "from INTELLIGENT_TIERING/ARCHIVE_ACCESS (Expedited retrieval, typically 1 min–5 min)")
      assert.strictEqual(refused._tag, "UsageError")
      assert.include(refused.message, "is in INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS, which offers no Expedited retrieval")
      assert.lengthOf(deep.mock.commandCalls(RestoreObjectCommand), 0)
    })
  )

  it.effect("waits for a restore already under way without asking for another", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, lines, layer } = mocked("Standard")
      mock.on(HeadObjectCommand).resolvesOnce(restoring("GLACIER")).resolvesOnce(restoring("GLACIER")).resolves(restored("GLACIER"))
      // Act
      const exit = yield* withClock(Effect.exit(ensureReadable(ARCHIVE).pipe(Effect.provide(layer))), "2 minutes")
      // Assess
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(mock.commandCalls(RestoreObjectCommand).length, 0)
      assert.match(lines[0] ?? "", /already restoring .* from GLACIER; waiting for it/)
    })
  )

  it.effect("takes RestoreAlreadyInProgress as the restore it asked for", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Standard")
      mock.on(HeadObjectCommand).resolvesOnce(archived("GLACIER")).resolves(restored("GLACIER"))
      mock
        .on(RestoreObjectCommand)
        .rejects(Object.assign(new Error("Object restore is already in progress"), { name: "RestoreAlreadyInProgress", $metadata: { httpStatusCode: 409 } }))
      // Act
      const exit = yield* Effect.exit(ensureReadable(ARCHIVE).pipe(Effect.provide(layer)))
      // Assess
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(mock.commandCalls(RestoreObjectCommand).length, 1)
    })
  )

  it.effect("reads a restored copy, GLACIER_IR and STANDARD_IA objects as they are", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Standard")
      mock.on(HeadObjectCommand, { Key: ARCHIVE.key }).resolves(restored("GLACIER"))
      mock.on(HeadObjectCommand, { Key: MANIFEST.key }).resolves({ StorageClass: "GLACIER_IR" })
      mock.on(HeadObjectCommand, { Key: "other" }).resolves({ StorageClass: "STANDARD_IA" })
      // Act
      yield* bringBack([ARCHIVE, MANIFEST, { bucket: ARCHIVE.bucket, key: "other" }]).pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(mock.commandCalls(RestoreObjectCommand).length, 0)
      assert.strictEqual(mock.commandCalls(HeadObjectCommand).length, 3)
    })
  )

  it.effect("refuses Expedited for DEEP_ARCHIVE with the tiers it offers, before asking S3 to restore anything", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Expedited")
      mock.on(HeadObjectCommand, { Key: MANIFEST.key }).resolves(archived("GLACIER"))
      mock.on(HeadObjectCommand, { Key: ARCHIVE.key }).resolves(archived("DEEP_ARCHIVE"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      const error = yield* Effect.flip(bringBack([MANIFEST, ARCHIVE]).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "UsageError")
      assert.strictEqual(error._tag === "UsageError" ? error.command : undefined, "verify")
      assert.include(error.message, "is in DEEP_ARCHIVE, which offers no Expedited retrieval; choose --tier Standard (typically within 12 h) or Bulk (typically within 48 h)")
      assert.strictEqual(mock.commandCalls(RestoreObjectCommand).length, 0)
    })
  )

  it.effect("gives up at the tier's ceiling, saying that the restore goes on and to run the command again", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, lines, layer } = mocked("Expedited")
      mock.on(HeadObjectCommand).resolvesOnce(archived("GLACIER")).resolves(restoring("GLACIER"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      const exit = yield* withClock(Effect.exit(ensureReadable(ARCHIVE).pipe(Effect.provide(layer))), "15 seconds")
      // Assess
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, "OperationFailed")
      assert.include(error?.message ?? "", "has not restored s3://artifacts/archives/ebs/snap-0123456789abcdef0/direct/disk.img.zst from GLACIER after 30 min")
      assert.include(error?.message ?? "", "run the command again later")
      // One poll every 15 seconds for 30 minutes, and the first.
      assert.strictEqual(mock.commandCalls(HeadObjectCommand).length, 1 + 121)
      assert.include(lines.at(-1) ?? "", "30 min so far, slower than the typical 1 min–5 min; waiting at most 0 s more")
    })
  )

  it.effect("restores an object named twice once", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Standard")
      mock.on(HeadObjectCommand).resolvesOnce(archived("GLACIER")).resolves(restored("GLACIER"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      yield* bringBack([MANIFEST, MANIFEST]).pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(mock.commandCalls(RestoreObjectCommand).length, 1)
    })
  )

  it.effect("restores the archive and its manifest at once, each waited for on its own", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mocked("Standard")
      mock.on(HeadObjectCommand, { Key: MANIFEST.key }).resolvesOnce(archived("GLACIER")).resolves(restored("GLACIER"))
      mock.on(HeadObjectCommand, { Key: ARCHIVE.key }).resolvesOnce(archived("GLACIER")).resolvesOnce(restoring("GLACIER")).resolves(restored("GLACIER"))
      mock.on(RestoreObjectCommand).resolves({})
      // Act
      const exit = yield* withClock(Effect.exit(bringBack([MANIFEST, ARCHIVE]).pipe(Effect.provide(layer))), "2 minutes")
      // Assess
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(mock.commandCalls(RestoreObjectCommand).map((call) => call.args[0].input.Key).sort(), [ARCHIVE.key, MANIFEST.key].sort())
    })
  )
})
