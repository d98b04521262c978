import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { compositeChecksum, sameComposite } from "./multipart"

const part = (partNumber: number, body: string) => ({
  partNumber,
  etag: `"${partNumber}"`,
  sha256: createHash("sha256").update(body).digest("base64"),
  size: body.length
})

describe("composite checksums", () => {
  it("hashes the parts' digests in order and suffixes the part count, as S3 does", () => {
    const parts = [part(1, "first part"), part(2, "second part")]
    const expected = createHash("sha256")
      .update(Buffer.concat(parts.map((entry) => Buffer.from(entry.sha256, "base64"))))
      .digest("base64")
    assert.strictEqual(compositeChecksum(parts), `${expected}-2`)
    assert.notStrictEqual(compositeChecksum([...parts].reverse()), compositeChecksum(parts))
  })

  it("accepts the stored value with or without the part count, and nothing else", () => {
    const composite = compositeChecksum([part(1, "a"), part(2, "b")])
    const [base] = composite.split("-")
    assert.isTrue(sameComposite(composite, composite))
    assert.isTrue(sameComposite(base, composite))
    assert.isFalse(sameComposite(`${base}-3`, composite))
    assert.isFalse(sameComposite(compositeChecksum([part(1, "a"), part(2, "c")]), composite))
    assert.isFalse(sameComposite(undefined, composite))
  })
})
