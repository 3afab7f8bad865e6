import Foundation
import Testing

@testable import LedgerService

@Suite("Master keys: the key file, its ids, and reading it again when it changes")
struct MasterKeysTests {
    private func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    @Test("the first key is current; ids are stable; a garbled or empty file is an error that says which")
    func parsing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("key")
        try Data(MasterKeys.newKeyFile()).write(to: file)
        let keys = try MasterKeys.load(file: file.path)
        #expect(keys.ids.count == 1 && keys.current.id.count == 16)
        #expect(try MasterKeys.load(file: file.path).current.id == keys.current.id)

        try write("# comment\nnot base64\n", to: file)
        #expect(throws: BiometricsError.self) { try MasterKeys.load(file: file.path) }
        try write("# only comments\n", to: file)
        #expect(throws: BiometricsError.self) { try MasterKeys.load(file: file.path) }
        #expect(throws: BiometricsError.self) { try MasterKeys.load(file: directory.appendingPathComponent("missing").path) }
    }

    @Test("a key file replaced under a running process is read again: the new first key wraps, the old still unwraps")
    func reload() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("key")
        let old = String(decoding: MasterKeys.newKeyFile(), as: UTF8.self)
        try write(old, to: file)
        let keys = try MasterKeys.load(file: file.path)
        let oldId = keys.current.id
        let sealed = try Biometrics(masterKeys: keys).seal([1, 2, 3, 4], collectionId: "c", faceId: "f")
        #expect(sealed.kekId == oldId && sealed.embedding != [1, 2, 3, 4])

        let new = String(decoding: MasterKeys.newKeyFile(), as: UTF8.self)
        try write(new + old, to: file)
        // Asking for a key it does not hold reads the file again at once.
        let newId = try MasterKeys.load(file: file.path).current.id
        #expect(keys.key(id: newId) != nil)
        #expect(keys.current.id == newId && keys.key(id: oldId) != nil)
    }
}
