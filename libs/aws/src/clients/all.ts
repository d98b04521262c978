import { Layer } from "effect"
import { Backup } from "./backup"
import { DynamoDb } from "./dynamodb"
import { Ebs } from "./ebs"
import { Ec2 } from "./ec2"
import { Kms } from "./kms"
import { Rds } from "./rds"
import { Sns } from "./sns"
import { Ssm } from "./ssm"
import { Sts } from "./sts"
import { EventBridge } from "./eventbridge"
import { S3 } from "./s3"
import { Sqs } from "./sqs"

/** Every client this project uses, from one configuration. */
export const AllClientsLive = Layer.mergeAll(S3.Live, Ebs.Live, Ec2.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, Backup.Live, Sns.Live, Kms.Live, Sts.Live, Rds.Live, Ssm.Live)
