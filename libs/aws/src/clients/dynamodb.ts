import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class DynamoDb extends Context.Tag("backup-actions/DynamoDb")<DynamoDb, DynamoDBClient>() {
  static readonly Live = scopedClient(DynamoDb, (settings) => new DynamoDBClient(clientOptions(settings)))
}
