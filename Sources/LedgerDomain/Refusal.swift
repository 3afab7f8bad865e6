/// Why `decide` refused a command: it changes nothing, and the client is told (how, with which
/// error code and message, is the wire's business).
public enum Refusal: Error, Sendable, Hashable {
    case collectionNotFound(String)
    case collectionAlreadyExists(String)
    case userNotFound(String)
    case userAlreadyExists(String)
    /// The user already holds `Limits.facesPerUser` faces.
    case userFaceLimit(userId: String)
    /// IndexFaces in the embedded engine, which has no image model to find faces with.
    case noImageModel
    /// The faces of an ImportFaces cannot enter the collection; the reason names the member.
    case invalidFaces(String)
}
