/// Why a maintenance run (`rebuild`, `revert`) cannot go ahead, in words for the operator.
public struct MaintenanceError: Error, CustomStringConvertible {
    public let description: String
}
