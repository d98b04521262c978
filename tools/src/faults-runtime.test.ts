import { describeFaultScenarios } from "./test-fault-suite"

describeFaultScenarios("runtime")
