import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tracing

extension Router<LedgerRequestContext> {
    /// `POST /`: the AWS JSON 1.1 exchange (`respond`), observed (metrics, access log) and traced.
    func addExchangeRoute(api: LedgerAPI, budget: BodyBudget, logger: Logger) {
        post("/") { request, context in
            let started = ContinuousClock.now
            let target = request.headers[HTTPField.Name("X-Amz-Target")!]
            // One server span per exchange, named by its operation, continuing the client's trace when it
            // sent W3C trace context (a no-op unless --otlp-endpoint is given).
            var parent = ServiceContext.topLevel
            InstrumentationSystem.instrument.extract(
                request.headers.map { (name: $0.name.canonicalName, value: $0.value) },
                into: &parent, using: HeaderExtractor())
            let operation = (try? Operation.from(target: target))?.rawValue ?? "unknown"
            return await withSpan(operation, context: parent, ofKind: .server) { span in
                var principal: String?
                let response = await respond(to: request, context: context, api: api, budget: budget, principal: &principal)
                let exchange = ExchangeObservation(target: target, response: response, duration: ContinuousClock.now - started)
                exchange.record()
                exchange.log(to: logger, principal: principal, source: context.remoteAddress?.ipAddress)
                span.attributes["http.response.status_code"] = Int(response.status.code)
                if exchange.code != "OK" {
                    span.attributes["aws.error_code"] = exchange.code
                    if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
                }
                return response
            }
        }
    }
}
