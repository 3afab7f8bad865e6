import EventLog
import Foundation
import HTTPTypes
import Hummingbird

/// Gives every response an `x-amzn-RequestId` (the API sets its own, which is also on the events).
struct RequestIdMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            response = Response(status: error.status)
        }
        let name = HTTPField.Name("x-amzn-RequestId")!
        if response.headers[name] == nil { response.headers[name] = UUID.random().uuidString }
        return response
    }
}
