// Fault plans are part of the node's API (`injectFaults`, `faultStatus`): users of `Trellis`
// get their types without importing the fault layer themselves.
@_exported import struct TrellisFaults.FaultCounts
@_exported import struct TrellisFaults.FaultPlan
@_exported import struct TrellisFaults.FaultRule
@_exported import struct TrellisFaults.FaultRuleError
