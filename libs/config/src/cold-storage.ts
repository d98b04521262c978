/**
 * The object tag that lets the artifact bucket's lifecycle move an object into GLACIER or
 * DEEP_ARCHIVE. A lifecycle filter can name a prefix, tags and sizes, never a suffix to leave
 * out, and an archive's manifest sits beside it: so archives carry this tag from their upload
 * on, manifests and every other document never do, and the transitions filter on it. What a
 * reader needs first (a manifest, image.json) stays instantly readable.
 */
export const COLD_STORAGE_TAG = { key: "backup-actions:cold-storage", value: "allowed" } as const

/** The tag as S3's `Tagging` request parameter (URL query encoded). */
export const COLD_STORAGE_TAGGING = `${encodeURIComponent(COLD_STORAGE_TAG.key)}=${encodeURIComponent(COLD_STORAGE_TAG.value)}`
