import { createHash, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateBucketCommand, GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { uploadVerified } from "./upload"

let emulator: Emulator
let scratch: string
beforeAll(async () => {
  emulator = await startEmulator({ name: "exporter-upload-test" })
  scratch = mkdtempSync(join(tmpdir(), "exporter-upload-"))
})
afterAll(async () => {
  await emulator.stop()
  rmSync(scratch, { recursive: true, force: true })
})

const MIB = 1024 * 1024

const uploadAndRead = (bytes: Buffer, singleUploadLimit: number) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const file = join(scratch, `input-${bytes.length}-${singleUploadLimit}`)
    writeFileSync(file, bytes)
    yield* awsCall("s3:CreateBucket", (abortSignal) => s3.send(new CreateBucketCommand({ Bucket: "exports" }), { abortSignal })).pipe(
      Effect.catchIf((error) => error.kind === "conflict", () => Effect.void)
    )
    const uploaded = yield* uploadVerified({
      file,
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("base64"),
      bucket: "exports",
      key: `data-${singleUploadLimit}.parquet`,
      contentType: "application/vnd.apache.parquet",
      singleUploadLimit,
      minimumPartSize: 5 * MIB
    })
    const stored = yield* awsCall("s3:GetObject", (abortSignal) => s3.send(new GetObjectCommand({ Bucket: "exports", Key: uploaded.key }), { abortSignal }))
    const body = Buffer.from((yield* Effect.promise(() => stored.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array()))))
    return { uploaded, body }
  }).pipe(Effect.scoped, Effect.provide(emulatorClients(emulator.endpoint)))

describe("uploading an export with its checksum verified", () => {
  it.live("uploads a small file in one request and verifies S3's full-object SHA-256", () =>
    Effect.gen(function* () {
      // Prepare
      const bytes = randomBytes(300_000)
      // Act
      const { uploaded, body } = yield* uploadAndRead(bytes, 64 * MIB)
      // Assess
      assert.strictEqual(uploaded.checksumType, "FULL_OBJECT")
      assert.isTrue(uploaded.verified)
      assert.isTrue(body.equals(bytes))
    })
  )

  it.live("uploads a large file in parts and verifies the composite SHA-256", () =>
    Effect.gen(function* () {
      // Prepare
      const bytes = randomBytes(11 * MIB)
      // Act
      const { uploaded, body } = yield* uploadAndRead(bytes, 1 * MIB)
      // Assess
      assert.strictEqual(uploaded.checksumType, "COMPOSITE")
      assert.match(uploaded.checksum, /-3$/)
      assert.isTrue(uploaded.verified)
      assert.isTrue(body.equals(bytes))
    })
  )
})
