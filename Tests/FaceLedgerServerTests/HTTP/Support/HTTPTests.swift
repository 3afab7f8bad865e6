import Testing

/// The in-process HTTP suites, one after another: each test runs a whole application (its command
/// processor, projector and pool) on a database of its own, and twenty of them at once would take
/// most of a PostgreSQL's 100 connections, which the other suites share.
@Suite("In-process HTTP through the real router", .serialized)
struct HTTPTests {}
