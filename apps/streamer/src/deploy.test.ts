import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, ownershipTagProblems, serviceStackProblems, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { streamerStack } from "./deploy"

describe("the streamer's stack", () => {
  const { stack, template, nag } = synthesizeService((app) => streamerStack(app, testDeployConfig(), { image: testImage() }))

  it("subscribes with the contracts' patterns, with a DLQ, its alarm and no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "streamer"), [])
  })

  it("runs privileged, one per instance, on Spot instances in the restorer's zone that scale with the queue", () => {
    // Assess
    template.hasResourceProperties("AWS::ECS::Service", { SchedulingStrategy: "DAEMON", LaunchType: "EC2" })
    template.hasResourceProperties("AWS::ECS::TaskDefinition", { ContainerDefinitions: [Match.objectLike({ Privileged: true })], NetworkMode: "host" })
    template.hasResourceProperties("AWS::AutoScaling::AutoScalingGroup", {
      MinSize: "0",
      AvailabilityZones: Match.absent(),
      MixedInstancesPolicy: Match.objectLike({ InstancesDistribution: Match.objectLike({ OnDemandPercentageAboveBaseCapacity: 0 }) })
    })
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({ MetadataOptions: Match.objectLike({ HttpTokens: "required" }) })
    })
  })

  it("runs on Fargate for direct mode when the configuration says so", () => {
    // Act
    const fargate = synthesizeService((app) => streamerStack(app, testDeployConfig({ streamer: { compute: "fargate" } }), { image: testImage() }))
    // Assess
    fargate.template.hasResourceProperties("AWS::ECS::Service", { LaunchType: "FARGATE" })
    fargate.template.resourceCountIs("AWS::AutoScaling::AutoScalingGroup", 0)
    assert.deepStrictEqual(iamCoverageProblems(fargate.stack, { template: fargate.template }), [])
    assert.doesNotThrow(fargate.nag)
  })

  it("allows every AWS call its runtime can make, sends to its own queue and DLQ included", () => {
    // Act
    const problems = iamCoverageProblems(stack, { template })
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("lets no role put the ownership tag on an existing resource that the tag would make deletable", () => {
    // Assess
    assert.deepStrictEqual(ownershipTagProblems(template), [])
  })

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
