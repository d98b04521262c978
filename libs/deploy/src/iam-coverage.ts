import { existsSync, readFileSync, readdirSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import type { Stack } from "aws-cdk-lib"
import { Template } from "aws-cdk-lib/assertions"
import ts from "typescript"
import { workspaceRootForDeploy, type ServiceStack } from "./service-stack"

// ---------------------------------------------------------------------------------------------
// What the runtime calls: read from the sources
// ---------------------------------------------------------------------------------------------

/**
 * One AWS request in the sources. Every request goes through `awsCall("<service>:<Operation>", ...)`
 * (libs/aws call.ts) with the operation as a string literal; the few made outside it (the SDK's
 * managed upload) name their operation for their errors with `toAwsError("<service>:<Operation>")`.
 */
export interface AwsCallSite {
  readonly operation: string
  /** Relative to the workspace root. */
  readonly file: string
  readonly line: number
  /** The top-level declaration the call is in: `file#scope` names it in the lists below. */
  readonly scope: string
  /** The call's arguments as written: what it sends decides some permissions (tags on creation, the queue). */
  readonly request: string
  /** The innermost named declaration around the call, as written: how its answer is used. */
  readonly context: string
}

export interface RuntimeCalls {
  readonly calls: ReadonlyArray<AwsCallSite>
  /** The files reached from the entries, relative to the workspace root. */
  readonly files: ReadonlyArray<string>
  /** awsCall sites whose operation is not a string literal: nobody can tell what they call. */
  readonly unknown: ReadonlyArray<string>
}

/** Not the runtime: tests, the CDK code, and libs/local (the local runtime's provisioning and stand-ins). */
const notRuntime = (file: string): boolean =>
  /\.test\.ts$/.test(file) || /^apps\/[^/]+\/src\/(deploy|cdk)\.ts$/.test(file) || file.startsWith("libs/deploy/") || file.startsWith("libs/local/")

/** What one module imports, defines and re-exports; type-only imports and exports carry no calls and are left out. */
interface ModuleFacts {
  readonly calls: ReadonlyArray<AwsCallSite>
  readonly unknown: ReadonlyArray<string>
  /** Specifier -> the names taken from it, or "all" (namespace, side-effect and dynamic imports). */
  readonly imports: ReadonlyArray<{ readonly specifier: string; readonly names: ReadonlyArray<string> | "all" }>
  /** The names this module itself defines and exports. */
  readonly defines: ReadonlySet<string>
  /** Re-exports: exported name -> its name in the other module, or "all" for `export *`. */
  readonly reExports: ReadonlyArray<{ readonly specifier: string; readonly names: ReadonlyMap<string, string> | "all" }>
}

const modifiers = (node: ts.Node): ReadonlyArray<ts.SyntaxKind> => (ts.canHaveModifiers(node) ? (ts.getModifiers(node) ?? []).map((modifier) => modifier.kind) : [])

const bindingNames = (name: ts.BindingName): ReadonlyArray<string> =>
  ts.isIdentifier(name) ? [name.text] : name.elements.flatMap((element) => (ts.isBindingElement(element) ? bindingNames(element.name) : []))

/** The name a declaration gives, for the declarations a call can sit in. */
const declaredName = (node: ts.Node): string | undefined => {
  if ((ts.isVariableDeclaration(node) || ts.isPropertyAssignment(node) || ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node)) && ts.isIdentifier(node.name)) {
    return node.name.text
  }
  if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node)) && node.name !== undefined) return node.name.text
  return undefined
}

/** The first argument of a call to `name`, when the callee is that identifier. */
const literalOperation = (node: ts.CallExpression, names: ReadonlyArray<string>): { readonly operation: string | undefined } | undefined => {
  if (!ts.isIdentifier(node.expression) || !names.includes(node.expression.text)) return undefined
  const first = node.arguments[0]
  return { operation: first !== undefined && ts.isStringLiteralLike(first) ? first.text : undefined }
}

const readModule = (root: string, file: string): ModuleFacts => {
  const path = relative(root, file)
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const calls: Array<AwsCallSite> = []
  const unknown: Array<string> = []
  const imports: Array<{ specifier: string; names: ReadonlyArray<string> | "all" }> = []
  const defines = new Set<string>()
  const reExports: Array<{ specifier: string; names: ReadonlyMap<string, string> | "all" }> = []
  const lineOf = (node: ts.Node): number => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
  const visit = (node: ts.Node, scopes: ReadonlyArray<ts.Node>): void => {
    const name = declaredName(node)
    const inner = name === undefined ? scopes : [...scopes, node]
    if (ts.isCallExpression(node)) {
      const request = literalOperation(node, ["awsCall"])
      const named = literalOperation(node, ["toAwsError"])
      const found = request ?? named
      if (found !== undefined) {
        if (found.operation === undefined) {
          if (request !== undefined) unknown.push(`${path}:${lineOf(node)}`)
        } else {
          const outer = scopes[0]
          const innermost = scopes[scopes.length - 1]
          calls.push({
            operation: found.operation,
            file: path,
            line: lineOf(node),
            scope: (outer === undefined ? undefined : declaredName(outer)) ?? "",
            request: node.arguments
              .slice(1)
              .map((argument) => argument.getText(source))
              .join(", "),
            context: innermost?.getText(source) ?? ""
          })
        }
      }
      const first = node.arguments[0]
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword && first !== undefined && ts.isStringLiteralLike(first)) imports.push({ specifier: first.text, names: "all" })
    }
    ts.forEachChild(node, (child) => visit(child, inner))
  }
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const clause = statement.importClause
      if (clause?.isTypeOnly === true) continue
      const specifier = statement.moduleSpecifier.text
      if (clause === undefined || (clause.namedBindings !== undefined && ts.isNamespaceImport(clause.namedBindings))) imports.push({ specifier, names: "all" })
      else {
        const bindings = clause.namedBindings !== undefined && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : []
        const names = [...(clause.name === undefined ? [] : ["default"]), ...bindings.filter((element) => !element.isTypeOnly).map((element) => (element.propertyName ?? element.name).text)]
        if (names.length > 0) imports.push({ specifier, names })
      }
    } else if (ts.isExportDeclaration(statement)) {
      if (statement.isTypeOnly) continue
      const specifier = statement.moduleSpecifier !== undefined && ts.isStringLiteral(statement.moduleSpecifier) ? statement.moduleSpecifier.text : undefined
      const clause = statement.exportClause
      if (specifier === undefined) {
        if (clause !== undefined && ts.isNamedExports(clause)) for (const element of clause.elements) if (!element.isTypeOnly) defines.add(element.name.text)
      } else if (clause === undefined) reExports.push({ specifier, names: "all" })
      else if (ts.isNamespaceExport(clause)) {
        defines.add(clause.name.text)
        imports.push({ specifier, names: "all" })
      } else {
        reExports.push({ specifier, names: new Map(clause.elements.filter((element) => !element.isTypeOnly).map((element) => [element.name.text, (element.propertyName ?? element.name).text])) })
      }
    } else if (ts.isExportAssignment(statement)) defines.add("default")
    else if (modifiers(statement).includes(ts.SyntaxKind.ExportKeyword)) {
      if (modifiers(statement).includes(ts.SyntaxKind.DefaultKeyword)) defines.add("default")
      else if (ts.isVariableStatement(statement)) for (const declaration of statement.declarationList.declarations) for (const name of bindingNames(declaration.name)) defines.add(name)
      else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement)) && statement.name !== undefined) defines.add(statement.name.text)
    }
  }
  visit(source, [])
  return { calls, unknown, imports, defines, reExports }
}

type PackageManifest = { readonly name?: string; readonly exports?: string | Readonly<Record<string, string>>; readonly workspaces?: ReadonlyArray<string> }
const readManifest = (directory: string): PackageManifest => JSON.parse(readFileSync(join(directory, "package.json"), "utf8"))

/** The workspace's own packages (package.json workspaces): name -> directory. */
const workspacePackages = (root: string): ReadonlyMap<string, string> => {
  const directories = (readManifest(root).workspaces ?? []).flatMap((pattern) =>
    pattern.endsWith("/*")
      ? readdirSync(join(root, pattern.slice(0, -2)), { withFileTypes: true })
          .filter((entry) => entry.isDirectory())
          .map((entry) => join(root, pattern.slice(0, -2), entry.name))
      : [join(root, pattern)]
  )
  return new Map(directories.filter((directory) => existsSync(join(directory, "package.json"))).map((directory): [string, string] => [readManifest(directory).name ?? "", directory]))
}

/** A specifier's file: relative ones beside the importer, the workspace's packages through their exports; npm and node: ones have none. */
const resolver = (root: string) => {
  const packages = workspacePackages(root)
  const asFile = (base: string): string | undefined =>
    [base, `${base}.ts`, base.replace(/\.js$/, ".ts"), join(base, "index.ts")].find((candidate) => candidate.endsWith(".ts") && existsSync(candidate))
  return (importer: string, specifier: string): string | undefined => {
    if (specifier.startsWith(".")) {
      const file = asFile(resolve(dirname(importer), specifier))
      if (file === undefined) throw new Error(`${relative(root, importer)}: cannot resolve ${specifier}`)
      return file
    }
    const match = /^(@[^/]+\/[^/]+)(\/.+)?$/.exec(specifier)
    const directory = match?.[1] === undefined ? undefined : packages.get(match[1])
    if (match === null || directory === undefined) return undefined
    const exports = readManifest(directory).exports
    const subpath = `.${match[2] ?? ""}`
    const target = typeof exports === "string" ? (subpath === "." ? exports : undefined) : exports?.[subpath]
    const file = target === undefined ? undefined : asFile(join(directory, target))
    if (file === undefined) throw new Error(`${relative(root, importer)}: ${specifier} is not exported by ${relative(root, directory)}`)
    return file
  }
}

/**
 * Every AWS request reachable from the entries through relative and workspace imports. A module
 * is entered (its calls counted, its imports followed) when something imports a name it
 * defines; re-exports (the libraries' index.ts) hand a name on to the module that defines it, so
 * importing one helper of a library does not count every call in the library.
 */
export const runtimeCalls = (root: string, entries: ReadonlyArray<string>): RuntimeCalls => {
  const resolveImport = resolver(root)
  const facts = new Map<string, ModuleFacts>()
  const factsOf = (file: string): ModuleFacts => {
    const known = facts.get(file)
    if (known !== undefined) return known
    const read = readModule(root, file)
    facts.set(file, read)
    return read
  }
  const entered = new Set<string>()
  const requested = new Set<string>()
  const pending: Array<{ readonly file: string; readonly name: string }> = entries.map((entry) => ({ file: resolve(root, entry), name: "*" }))
  const request = (importer: string, specifier: string, name: string): void => {
    const file = resolveImport(importer, specifier)
    if (file !== undefined && !notRuntime(relative(root, file))) pending.push({ file, name })
  }
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { file, name } = next
    if (requested.has(`${file}#${name}`)) continue
    requested.add(`${file}#${name}`)
    const module = factsOf(file)
    if ((name === "*" || module.defines.has(name)) && !entered.has(file)) {
      entered.add(file)
      for (const { specifier, names } of module.imports) for (const imported of names === "all" ? ["*"] : names) request(file, specifier, imported)
    }
    for (const { specifier, names } of module.reExports) {
      if (names === "all") request(file, specifier, name)
      else if (name === "*") for (const inner of names.values()) request(file, specifier, inner)
      else {
        const inner = names.get(name)
        if (inner !== undefined) request(file, specifier, inner)
      }
    }
  }
  return {
    calls: [...entered].flatMap((file) => factsOf(file).calls),
    files: [...entered].map((file) => relative(root, file)).sort(),
    unknown: [...entered].flatMap((file) => factsOf(file).unknown)
  }
}

/** A service's runtime entries: its process (main.ts) and, when it has one, its Lambda handler (lambda.ts). */
export const serviceEntries = (root: string, service: string): ReadonlyArray<string> =>
  ["main.ts", "lambda.ts"].map((entry) => join("apps", service, "src", entry)).filter((entry) => existsSync(join(root, entry)))

// ---------------------------------------------------------------------------------------------
// From operations to IAM actions: the one place that knows how they differ
// ---------------------------------------------------------------------------------------------

/** The prefix an operation is named with -> the IAM service prefix its actions have. */
export const IAM_PREFIXES: Readonly<Record<string, string>> = {
  backup: "backup",
  dynamodb: "dynamodb",
  ebs: "ebs",
  ec2: "ec2",
  eventbridge: "events",
  events: "events",
  iam: "iam",
  kms: "kms",
  logs: "logs",
  rds: "rds",
  s3: "s3",
  scheduler: "scheduler",
  sns: "sns",
  sqs: "sqs",
  ssm: "ssm",
  sts: "sts"
}

/**
 * Names that are not AWS requests, so need no IAM action, with the reason. None is needed
 * today: the ledger's "ledger:decode" names errors made locally (`new AwsError`), which the
 * collector does not read.
 */
export const NOT_IAM_OPERATIONS: Readonly<Record<string, string>> = {}

/**
 * Operations whose IAM actions are not their own name, or not only it (the Service
 * Authorization Reference's actions and dependent actions, and the services' guides).
 */
export const IAM_ACTIONS_OF_OPERATION: Readonly<Record<string, ReadonlyArray<string>>> = {
  // S3: multipart uploads are authorized as PutObject; reads of metadata as GetObject.
  "s3:CreateMultipartUpload": ["s3:PutObject"],
  "s3:UploadPart": ["s3:PutObject"],
  "s3:CompleteMultipartUpload": ["s3:PutObject"],
  "s3:ListParts": ["s3:ListMultipartUploadParts"],
  "s3:HeadObject": ["s3:GetObject"],
  "s3:GetObjectAttributes": ["s3:GetObject", "s3:GetObjectAttributes"],
  "s3:ListObjectsV2": ["s3:ListBucket"],
  "s3:ListObjects": ["s3:ListBucket"],
  "s3:DeleteObjects": ["s3:DeleteObject"],
  // A copy reads the source (GetObject) and writes the target (PutObject).
  "s3:CopyObject": ["s3:GetObject", "s3:PutObject"],
  "s3:UploadPartCopy": ["s3:GetObject", "s3:PutObject"],
  // @aws-sdk/lib-storage's Upload: one PutObject or a multipart upload, aborted if it fails.
  "s3:Upload": ["s3:PutObject", "s3:AbortMultipartUpload"],
  // DynamoDB authorizes a transaction item by item: a write by the kinds of item it has (TRANSACTION_ITEMS).
  "dynamodb:TransactGetItems": ["dynamodb:GetItem"],
  "dynamodb:TransactWriteItems": [],
  // Restoring writes the backup's items into the new table: the SAR's dependent actions.
  "dynamodb:RestoreTableFromBackup": [
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem"
  ],
  // The export writes to S3 as the caller (DynamoDB guide, "Requesting a table export").
  "dynamodb:ExportTableToPointInTime": ["dynamodb:ExportTableToPointInTime", "s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectAcl"],
  // The store task reads the image's snapshots through EBS direct and writes the object as the caller.
  "ec2:CreateStoreImageTask": ["ec2:CreateStoreImageTask", "ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock", "s3:PutObject", "s3:AbortMultipartUpload"],
  // The restore task reads the object and writes the new image's snapshots through EBS direct, as the caller.
  "ec2:CreateRestoreImageTask": ["ec2:CreateRestoreImageTask", "s3:GetObject", "ebs:StartSnapshot", "ebs:PutSnapshotBlock", "ebs:CompleteSnapshot"],
  // RDS passes the export role to the export and has a grant made on the export's key.
  "rds:StartExportTask": ["rds:StartExportTask", "iam:PassRole", "kms:DescribeKey", "kms:CreateGrant"]
}

/** An IAM action a call needs, and when it matters, on what and how. */
export interface IamRequirement {
  readonly action: string
  /** Tagging during creation: the creating action, which `ec2:CreateAction` names. */
  readonly onCreationBy?: string
  /** A resource of the stack the call must be allowed on (see SETTINGS_RESOURCES). */
  readonly resource?: StackResource
}

/** What a request sends decides some permissions: each rule adds actions when its request (or context) matches. */
interface RequestRule {
  readonly operations: RegExp
  readonly when: (call: AwsCallSite) => boolean
  readonly adds: (operation: string) => ReadonlyArray<IamRequirement>
}

const REQUEST_RULES: ReadonlyArray<RequestRule> = [
  // EC2 tags given on creation are authorized as ec2:CreateTags with ec2:CreateAction set to the operation.
  {
    operations: /^ec2:(Create|Copy|Run|Register|Import)/,
    when: (call) => /\bTagSpecifications\b/.test(call.request),
    adds: (operation) => [{ action: "ec2:CreateTags", onCreationBy: operation.slice("ec2:".length) }]
  },
  // RDS authorizes tags given on creation (or on a copy or restore) as rds:AddTagsToResource.
  { operations: /^rds:(Create|Copy|Restore)/, when: (call) => /\bTags\s*:/.test(call.request), adds: () => [{ action: "rds:AddTagsToResource" }] },
  // Object tags in the request are authorized as s3:PutObjectTagging; the store task tags its object too.
  {
    operations: /^(s3:(PutObject|CreateMultipartUpload|CopyObject)|ec2:CreateStoreImageTask)$/,
    when: (call) => /\b(Tagging|S3ObjectTags)\s*:/.test(call.request),
    adds: () => [{ action: "s3:PutObjectTagging" }]
  },
  // A copy takes the source's tags along unless told to replace them: read there, written here.
  {
    operations: /^s3:CopyObject$/,
    when: (call) => !/TaggingDirective\s*:\s*"REPLACE"/.test(call.request),
    adds: () => [{ action: "s3:GetObjectTagging" }, { action: "s3:PutObjectTagging" }]
  },
  // Without s3:ListBucket S3 answers a missing key with 403, not 404: code that takes "not found" for an answer needs it.
  {
    operations: /^s3:(GetObject|HeadObject)$/,
    when: (call) => /"not-found"|undefinedWhenNotFound|NoSuchKey/.test(call.context),
    adds: () => [{ action: "s3:ListBucket" }]
  }
]

/** The kinds of item a TransactWriteItems request writes, as the per-item actions IAM checks. */
const TRANSACTION_ITEMS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bPut\s*:/, "dynamodb:PutItem"],
  [/\bUpdate\s*:/, "dynamodb:UpdateItem"],
  [/\bDelete\s*:/, "dynamodb:DeleteItem"],
  [/\bConditionCheck\s*:/, "dynamodb:ConditionCheckItem"]
]

/** The resources of a service stack that a request names through the service's settings (libs/config ServiceSettings). */
export type StackResource = "queue" | "deadLetterQueue" | "ledger" | "bus" | "topic"

/** Request field -> the settings value it is given -> the stack's resource. */
const SETTINGS_RESOURCES: Readonly<Record<string, Readonly<Record<string, StackResource>>>> = {
  QueueUrl: { queueUrl: "queue", deadLetterQueueUrl: "deadLetterQueue" },
  TableName: { ledgerTable: "ledger" },
  EventBusName: { busName: "bus" },
  TopicArn: { topicArn: "topic", notificationTopicArn: "topic" }
}

const resourcesNamed = (call: AwsCallSite): ReadonlyArray<StackResource> =>
  Object.entries(SETTINGS_RESOURCES).flatMap(([field, values]) =>
    [...call.request.matchAll(new RegExp(`\\b${field}\\s*:\\s*([\\w.]+)`, "g"))].flatMap((match) => {
      const resource = values[(match[1] ?? "").split(".").pop() ?? ""]
      return resource === undefined ? [] : [resource]
    })
  )

/** What one call needs: IAM actions, nothing (not an AWS request), or a name nobody can map. */
export type CallNeeds =
  | { readonly _tag: "Actions"; readonly requirements: ReadonlyArray<IamRequirement> }
  | { readonly _tag: "NotIam"; readonly reason: string }
  | { readonly _tag: "Unmapped"; readonly problem: string }

/** The IAM actions one call needs, or why it needs none. */
export const iamRequirementsOf = (call: AwsCallSite): CallNeeds => {
  const operation = call.operation.replace(/\(.*\)$/, "")
  const reason = NOT_IAM_OPERATIONS[operation]
  if (reason !== undefined) return { _tag: "NotIam", reason }
  const [prefix, name] = operation.split(":")
  const iamPrefix = prefix === undefined ? undefined : IAM_PREFIXES[prefix]
  if (iamPrefix === undefined || name === undefined || name === "") {
    return {
      _tag: "Unmapped",
      problem: `${call.file}:${call.line}: "${call.operation}" names no known AWS service; map its prefix in IAM_PREFIXES or list it in NOT_IAM_OPERATIONS`
    }
  }
  const normalized = `${iamPrefix}:${name}`
  const own: ReadonlyArray<IamRequirement> = (IAM_ACTIONS_OF_OPERATION[normalized] ?? [normalized]).map((action) => ({ action }))
  const items = normalized === "dynamodb:TransactWriteItems" ? TRANSACTION_ITEMS.filter(([pattern]) => pattern.test(call.request)).map(([, action]) => ({ action })) : []
  const added = REQUEST_RULES.filter((rule) => rule.operations.test(normalized) && rule.when(call)).flatMap((rule) => rule.adds(normalized))
  const resources = resourcesNamed(call)
  // The stack's resources a request names apply to the actions of its own service.
  const requirements = [...own, ...items, ...added].flatMap((requirement) =>
    resources.length === 0 || !requirement.action.startsWith(`${iamPrefix}:`) ? [requirement] : resources.map((resource) => ({ ...requirement, resource }))
  )
  return { _tag: "Actions", requirements }
}

/**
 * Calls that never run with the service role's own credentials against AWS, each with the reason:
 * `file#top-level declaration`. An entry that no longer matches a call is reported, so the list
 * cannot outlive the code it excuses.
 */
export const NOT_THE_ROLE: Readonly<Record<string, string>> = {}

// ---------------------------------------------------------------------------------------------
// What the stack allows: read from the synthesized template
// ---------------------------------------------------------------------------------------------

/** A statement of a role's policies, its resources rendered as text (`${Ref}` / `${Id.Attribute}` for references). */
export interface RoleStatement {
  readonly effect: string
  readonly actions: ReadonlyArray<string>
  readonly resources: ReadonlyArray<string>
  readonly condition: Readonly<Record<string, Readonly<Record<string, unknown>>>>
}

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const isObject = (value: Json | undefined): value is { readonly [key: string]: Json } => typeof value === "object" && value !== null && !Array.isArray(value)
const asArray = (value: Json | undefined): ReadonlyArray<Json> => (value === undefined ? [] : Array.isArray(value) ? value : [value])

/** A CloudFormation value as text: joins joined, references as `${Id}` and `${Id.Attribute}`. */
export const renderValue = (value: Json | undefined): string => {
  if (typeof value === "string") return value
  if (isObject(value)) {
    const join = asArray(value["Fn::Join"])
    if (join.length === 2 && typeof join[0] === "string") return asArray(join[1]).map(renderValue).join(join[0])
    if (typeof value["Ref"] === "string") return `\${${value["Ref"]}}`
    const attribute = asArray(value["Fn::GetAtt"])
    if (attribute.length === 2) return `\${${attribute.map(renderValue).join(".")}}`
  }
  return JSON.stringify(value)
}

const statementsIn = (document: Json | undefined): ReadonlyArray<RoleStatement> =>
  asArray(isObject(document) ? document["Statement"] : undefined).flatMap((statement) =>
    isObject(statement)
      ? [
          {
            effect: renderValue(statement["Effect"]),
            actions: asArray(statement["Action"]).map(renderValue),
            resources: asArray(statement["Resource"]).map(renderValue),
            condition: (isObject(statement["Condition"]) ? statement["Condition"] : {}) as RoleStatement["condition"]
          }
        ]
      : []
  )

const resourcesOfType = (template: Template, type: string): ReadonlyArray<readonly [string, { readonly [key: string]: Json }]> =>
  Object.entries(template.findResources(type) as Record<string, { readonly [key: string]: Json }>)

const propertiesOf = (resource: { readonly [key: string]: Json }): { readonly [key: string]: Json } => (isObject(resource["Properties"]) ? resource["Properties"] : {})

/** Every statement that applies to a role: its policies, the managed policies attached to it, and its inline policies. */
export const roleStatements = (template: Template, roleId: string): ReadonlyArray<RoleStatement> => {
  const attached = (properties: { readonly [key: string]: Json }) => asArray(properties["Roles"]).some((role) => renderValue(role) === `\${${roleId}}`)
  const policies = [...resourcesOfType(template, "AWS::IAM::Policy"), ...resourcesOfType(template, "AWS::IAM::ManagedPolicy")]
    .map(([, policy]) => propertiesOf(policy))
    .filter(attached)
    .flatMap((properties) => statementsIn(properties["PolicyDocument"]))
  const role = resourcesOfType(template, "AWS::IAM::Role").find(([id]) => id === roleId)
  const inline = asArray(role === undefined ? undefined : propertiesOf(role[1])["Policies"]).flatMap((policy) => statementsIn(isObject(policy) ? policy["PolicyDocument"] : undefined))
  return [...policies, ...inline]
}

/** The roles the service's handlers run as: the task role of its task definition, or its consumer function's role. */
export const consumerRoleIds = (template: Template): ReadonlyArray<string> => {
  const referenced = (value: Json | undefined): string | undefined => /^\$\{([^.}]+)\.Arn\}$/.exec(renderValue(value))?.[1]
  const taskRoles = resourcesOfType(template, "AWS::ECS::TaskDefinition").map(([, task]) => referenced(propertiesOf(task)["TaskRoleArn"]))
  const fed = new Set(resourcesOfType(template, "AWS::Lambda::EventSourceMapping").map(([, mapping]) => renderValue(propertiesOf(mapping)["FunctionName"])))
  const functionRoles = resourcesOfType(template, "AWS::Lambda::Function")
    .filter(([id]) => fed.has(`\${${id}}`))
    .map(([, fn]) => referenced(propertiesOf(fn)["Role"]))
  return [...new Set([...taskRoles, ...functionRoles].flatMap((id) => (id === undefined ? [] : [id])))]
}

const globMatches = (pattern: string, value: string): boolean =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(value)

/**
 * Whether a statement allows the call as the runtime makes it. Conditions on tags and names are
 * taken to hold (the code tags what it makes); two never hold for the runtime's own requests:
 * `kms:ViaService` (only another service's use of a key has it) and `ec2:CreateAction` (only
 * tagging during creation by that action has it).
 */
const allows = (statement: RoleStatement, requirement: IamRequirement, resource: string | undefined): boolean => {
  if (statement.effect !== "Allow" || !statement.actions.some((action) => globMatches(action, requirement.action))) return false
  if (resource !== undefined && !statement.resources.some((pattern) => globMatches(pattern, resource))) return false
  for (const test of Object.values(statement.condition)) {
    if ("kms:ViaService" in test) return false
    const creating = test["ec2:CreateAction"]
    if (creating !== undefined && (requirement.onCreationBy === undefined || !asArray(creating as Json).map(renderValue).includes(requirement.onCreationBy))) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

export interface IamCoverageOptions {
  /** The workspace root; by default where the CDK apps and tests run (workspaceRootForDeploy). */
  readonly root?: string
  /** The calls to check; by default those reachable from the service's entries. */
  readonly calls?: ReadonlyArray<AwsCallSite>
  /** The stack's template, when the caller has it already. */
  readonly template?: Template
}

/**
 * What a service's runtime may call that the role its handlers run as does not allow: every
 * awsCall reachable from its entries, as IAM actions, each on the stack's queue, DLQ, ledger,
 * bus or topic when the request names one of them. Returns the problems found, one per line.
 */
export const iamCoverageProblems = (stack: ServiceStack, options: IamCoverageOptions = {}): ReadonlyArray<string> => {
  const root = options.root ?? workspaceRootForDeploy()
  const found = options.calls === undefined ? runtimeCalls(root, serviceEntries(root, stack.service)) : { calls: options.calls, unknown: [] }
  const template = options.template ?? Template.fromStack(stack)
  const roles = new Map(consumerRoleIds(template).map((role) => [role, roleStatements(template, role)]))
  const problems: Array<string> = found.unknown.map((site) => `${site}: awsCall's operation is not a string literal`)
  if (roles.size === 0) problems.push(`${stack.service}: no task or function role found`)
  const stackResources: Readonly<Record<StackResource, string>> = {
    queue: renderValue(stack.resolve(stack.delivery.queue.queueArn)),
    deadLetterQueue: renderValue(stack.resolve(stack.delivery.deadLetterQueue.queueArn)),
    ledger: renderValue(stack.resolve(stack.ledger.tableArn)),
    bus: renderValue(stack.resolve(stack.bus.eventBusArn)),
    topic: renderValue(stack.resolve(stack.topic.topicArn))
  }
  const excused = new Set<string>()
  for (const call of found.calls) {
    const key = `${call.file}#${call.scope}`
    if (NOT_THE_ROLE[key] !== undefined) {
      excused.add(key)
      continue
    }
    const needs = iamRequirementsOf(call)
    if (needs._tag === "Unmapped") problems.push(needs.problem)
    if (needs._tag !== "Actions") continue
    for (const requirement of needs.requirements) {
      const resource = requirement.resource === undefined ? undefined : stackResources[requirement.resource]
      for (const [role, statements] of roles) {
        if (statements.some((statement) => allows(statement, requirement, resource))) continue
        const on = requirement.resource === undefined ? "" : ` on its ${requirement.resource}`
        problems.push(`${stack.service}: ${role} may not ${requirement.action}${on} (${call.operation} at ${call.file}:${call.line})`)
      }
    }
  }
  if (options.calls === undefined) {
    for (const key of Object.keys(NOT_THE_ROLE)) {
      const [file] = key.split("#")
      if (found.calls.some((call) => call.file === file) && !excused.has(key)) problems.push(`NOT_THE_ROLE lists ${key}, which makes no call any more`)
    }
  }
  return [...new Set(problems)]
}

/** Actions that add tags to an existing resource. */
const TAGGING_ACTIONS = ["ec2:CreateTags", "rds:AddTagsToResource", "dynamodb:TagResource", "backup:TagResource", "ssm:AddTagsToResource", "s3:PutObjectTagging"]

/** `arn:partition:service:region:account:<type>[:/]<name>` -> its service, type and name (all `*` for `*`). */
const arnParts = (resource: string): { readonly service: string; readonly type: string; readonly name: string } => {
  if (resource === "*") return { service: "*", type: "*", name: "*" }
  // References (`${AWS::Partition}`) hold colons of their own.
  const [, , service = "", , , ...rest] = resource.replace(/\$\{[^}]*\}/g, "ref").split(":")
  const tail = rest.join(":")
  const split = /^([^:/]+)[:/](.*)$/.exec(tail)
  return { service, type: split?.[1] ?? tail, name: split?.[2] ?? "*" }
}

/** The tag keys a statement's condition requires the resource to carry (aws:ResourceTag/, ec2:ResourceTag/, rds:*-tag/). */
const requiredResourceTags = (statement: RoleStatement): ReadonlyArray<string> =>
  Object.values(statement.condition).flatMap((test) =>
    Object.keys(test).flatMap((key) => {
      const match = /^[a-z0-9-]+:(?:ResourceTag|[a-z-]+-tag)\/(.+)$/.exec(key)
      return match?.[1] === undefined ? [] : [match[1]]
    })
  )

/**
 * Roles that may delete a resource because it carries a tag, and may also add that tag to any
 * existing resource of that type: then the condition protects nothing. Tagging is fine during
 * creation only (`ec2:CreateAction`), or on resources whose names the service itself gives them
 * (a name prefix in the ARN), never on `<type>/*`. Returns the problems found.
 */
export const ownershipTagProblems = (template: Template): ReadonlyArray<string> =>
  resourcesOfType(template, "AWS::IAM::Role").flatMap(([roleId]) => {
    const statements = roleStatements(template, roleId).filter((statement) => statement.effect === "Allow")
    const deletes = statements.flatMap((statement) =>
      statement.actions
        .filter((action) => /^[a-z0-9-]+:(Delete|Deregister)/.test(action))
        .flatMap((action) => requiredResourceTags(statement).flatMap((tag) => statement.resources.map((resource) => ({ action, tag, resource: arnParts(resource) }))))
    )
    return statements.flatMap((statement) => {
      if (Object.values(statement.condition).some((test) => "ec2:CreateAction" in test)) return []
      return statement.actions
        .filter((action) => TAGGING_ACTIONS.includes(action))
        .flatMap((tagging) =>
          statement.resources.flatMap((pattern) => {
            const tagged = arnParts(pattern)
            if (!tagged.name.startsWith("*")) return []
            return deletes
              .filter(({ action, resource }) => action.split(":")[0] === tagging.split(":")[0] && (tagged.type === "*" || resource.type === "*" || tagged.type === resource.type))
              .map(({ action, tag }) => `${roleId}: ${tagging} on ${pattern} can put ${tag} on any existing ${tagged.type === "*" ? "resource" : tagged.type}, and ${action} trusts that tag`)
          })
        )
    })
  })

export interface TaskCoverageOptions {
  /** Names the stack in the problems, as the service's name does for a service stack. */
  readonly label: string
  /** The runtime's entries, relative to the workspace root: the files whose reachable calls the role must allow. */
  readonly entries: ReadonlyArray<string>
  /** The stack's resources a request may name through the settings (the ledger, the bus, ...), as the stack refers to them. */
  readonly resources: Partial<Readonly<Record<StackResource, string>>>
  /** The workspace root; by default where the CDK apps and tests run (workspaceRootForDeploy). */
  readonly root?: string
  /** The calls to check; by default those reachable from the entries. */
  readonly calls?: ReadonlyArray<AwsCallSite>
  /** The stack's template, when the caller has it already. */
  readonly template?: Template
}

/**
 * The same check as iamCoverageProblems for a stack that is no service (a scheduled task of
 * the operator CLI): every awsCall reachable from the given entries, as IAM actions, against the
 * role of each task definition in the stack. A request that names one of the stack's resources
 * must be allowed on it; one that names a resource the stack does not have is a problem too.
 */
export const taskCoverageProblems = (stack: Stack, options: TaskCoverageOptions): ReadonlyArray<string> => {
  const root = options.root ?? workspaceRootForDeploy()
  const found = options.calls === undefined ? runtimeCalls(root, options.entries) : { calls: options.calls, unknown: [] }
  const template = options.template ?? Template.fromStack(stack)
  const roles = new Map(consumerRoleIds(template).map((role) => [role, roleStatements(template, role)]))
  const problems: Array<string> = found.unknown.map((site) => `${site}: awsCall's operation is not a string literal`)
  if (roles.size === 0) problems.push(`${options.label}: no task or function role found`)
  for (const call of found.calls) {
    const needs = iamRequirementsOf(call)
    if (needs._tag === "Unmapped") problems.push(needs.problem)
    if (needs._tag !== "Actions") continue
    for (const requirement of needs.requirements) {
      const named = requirement.resource === undefined ? undefined : options.resources[requirement.resource]
      if (requirement.resource !== undefined && named === undefined) {
        problems.push(`${options.label}: ${call.operation} at ${call.file}:${call.line} names its ${requirement.resource}, which the stack does not have`)
        continue
      }
      const resource = named === undefined ? undefined : renderValue(stack.resolve(named))
      for (const [role, statements] of roles) {
        if (statements.some((statement) => allows(statement, requirement, resource))) continue
        const on = requirement.resource === undefined ? "" : ` on its ${requirement.resource}`
        problems.push(`${options.label}: ${role} may not ${requirement.action}${on} (${call.operation} at ${call.file}:${call.line})`)
      }
    }
  }
  return [...new Set(problems)]
}
