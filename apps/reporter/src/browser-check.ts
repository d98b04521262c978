import { execFileSync } from "node:child_process"
import { mkdirSync, statSync } from "node:fs"
import { dirname } from "node:path"
import { chromium } from "playwright-core"

/** What a report page showed in a real browser. */
export interface RenderedReport {
  readonly errors: ReadonlyArray<string>
  /** The summary cards: label -> number shown. */
  readonly metrics: Readonly<Record<string, string>>
  readonly failureRows: number
  /** The AWS Backup jobs section's counts: kind of job -> state -> number shown. */
  readonly jobCounts: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** The failed AWS Backup jobs listed, each with the reason shown. */
  readonly jobFailures: ReadonlyArray<{ readonly job: string; readonly state: string; readonly reason: string }>
  readonly screenshotBytes: number
}

/** Debian's Chromium, wherever PATH has it. */
const chromiumPath = (): string => execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim()

/** Opens a report page in headless Chromium, reads what it shows and saves a full-page screenshot. */
export const renderInChromium = async (html: string, screenshotFile: string): Promise<RenderedReport> => {
  // Tests run as root, where Chromium's sandbox is not available.
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] })
  try {
    const page = await browser.newPage()
    const errors: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text())
    })
    page.on("pageerror", (error) => errors.push(error.message))
    await page.setContent(html, { waitUntil: "load" })
    const metrics = await page.$$eval(".card", (cards) =>
      Object.fromEntries(cards.map((card) => [card.getAttribute("data-metric") ?? "", card.querySelector(".number")?.textContent ?? ""]))
    )
    const failureRows = await page.locator("h2:text-is('Failures') + table tbody tr").count()
    const jobCounts = await page.$$eval("#aws-backup-jobs .job-counts tbody tr", (rows) =>
      Object.fromEntries(
        rows.map((row) => [
          row.getAttribute("data-kind") ?? "",
          Object.fromEntries([...row.querySelectorAll("td[data-state]")].map((cell) => [cell.getAttribute("data-state") ?? "", cell.textContent ?? ""]))
        ])
      )
    )
    const jobFailures = await page.$$eval("#aws-backup-jobs .job-failures tbody tr", (rows) =>
      rows.map((row) => {
        const cells = [...row.querySelectorAll("td")].map((cell) => cell.textContent ?? "")
        return { job: cells[1] ?? "", state: cells[2] ?? "", reason: cells[6] ?? "" }
      })
    )
    mkdirSync(dirname(screenshotFile), { recursive: true })
    await page.screenshot({ path: screenshotFile, fullPage: true })
    return { errors, metrics, failureRows, jobCounts, jobFailures, screenshotBytes: statSync(screenshotFile).size }
  } finally {
    await browser.close()
  }
}
