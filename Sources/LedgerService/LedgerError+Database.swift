import Postgres
import RekognitionWire

extension LedgerError {
    /// What a client hears when the database fails: 503 when it cannot be reached or did not answer
    /// in time, else 500, never the database's own message. The outcome of a commit cut off mid-way
    /// is unknown; a retry with the same ClientRequestToken finds out.
    public static func databaseFailure(_ error: any Error) -> LedgerError {
        if let error = error as? PostgresError, error.isConnectivityProblem || error.isTimeout {
            return LedgerError(.serviceUnavailable, "The service is temporarily unavailable; retry the request")
        }
        return LedgerError(.internalServerError, "Internal server error")
    }
}
