import Crypto
import EventLog
import Foundation
import LedgerDomain
import Postgres
import Synchronization

/// The key-encryption keys ("master keys") that wrap the data keys of `face_keys`: never in the
/// database. A key file holds one base64 256-bit key a line (`#` comments); the first is current — new
/// data keys are wrapped under it — and the others still unwrap what they wrapped, until
/// `faceledger rotate-master-key` has re-wrapped it all. A key's id is the first 16 hex digits of its
/// SHA-256, so a wrong key is known by its id before anything is decrypted.
///
/// The file is read again when it changes, so a rotation reaches running servers without a restart.
public final class MasterKeys: Sendable {
    public struct Key: Sendable {
        public let id: String
        /// The key's bytes (SymmetricKey itself is not Sendable).
        let bytes: Data
        var key: SymmetricKey { SymmetricKey(data: bytes) }
    }

    /// Where the keys come from: a file, or (for tests) keys held in memory only.
    public let file: String?
    private let loaded: Mutex<(keys: [Key], text: String, checked: ContinuousClock.Instant)>

    private init(file: String?, keys: [Key], text: String) {
        self.file = file
        self.loaded = Mutex((keys, text, .now))
    }

    /// The keys of `file`; a missing, unreadable or malformed file is an error that says which.
    public static func load(file: String) throws -> MasterKeys {
        let (keys, text) = try read(file)
        return MasterKeys(file: file, keys: keys, text: text)
    }

    /// One random key held in memory only (tests).
    public static func ephemeral() -> MasterKeys {
        MasterKeys(file: nil, keys: [Key(SymmetricKey(size: .bits256))], text: "")
    }

    /// A new key file's contents: one random key.
    public static func newKeyFile() -> [UInt8] {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        return Array(
            """
            # FaceLedger master key: wraps the keys of the face embeddings in the log. Keep it apart from the
            # database and its backups; without it no embedding can be read. One base64 256-bit key a line,
            # the current one first (faceledger rotate-master-key).
            \(key)

            """.utf8)
    }

    /// The key new data keys are wrapped under.
    public var current: Key { keys()[0] }

    /// The ids of every key held.
    public var ids: [String] { keys().map(\.id) }

    func key(id: String) -> SymmetricKey? {
        if let key = keys().first(where: { $0.id == id }) { return key.key }
        return keys(forceCheck: true).first { $0.id == id }?.key
    }

    /// The keys, read again from the file when its contents changed (checked at most once a second, or
    /// now; through symbolic links, as mounted secrets swap them). A changed file is taken only if it
    /// still holds the current key — the last step of a rotation drops older keys, never the current
    /// one — so a wrong file put in place never has new data keys wrapped under a key that may vanish.
    private func keys(forceCheck: Bool = false) -> [Key] {
        guard let file else { return loaded.withLock { $0.keys } }
        return loaded.withLock { state in
            let now = ContinuousClock.now
            guard forceCheck || now - state.checked >= .seconds(1) else { return state.keys }
            state.checked = now
            guard let (keys, text) = try? Self.read(file), text != state.text else { return state.keys }
            if keys.contains(where: { $0.id == state.keys[0].id }) {
                state.keys = keys
                state.text = text
            }
            return state.keys
        }
    }

    private static func read(_ file: String) throws -> ([Key], String) {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw BiometricsError(description: "cannot read the master key file \(file)")
        }
        var keys: [Key] = []
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let bytes = Data(base64Encoded: line), bytes.count == 32 else {
                throw BiometricsError(description: "line \(number + 1) of the master key file \(file) is not a base64 256-bit key")
            }
            keys.append(Key(SymmetricKey(data: bytes)))
        }
        guard !keys.isEmpty else { throw BiometricsError(description: "the master key file \(file) holds no key") }
        return (keys, text)
    }
}

extension MasterKeys.Key {
    init(_ key: SymmetricKey) {
        self.bytes = key.withUnsafeBytes { Data($0) }
        self.id = key.withUnsafeBytes { SHA256.hash(data: Data($0)) }.prefix(8).hexString
    }
}

/// A failure of the biometrics' encryption: a missing or wrong master key, a data key that does not open.
public struct BiometricsError: Error, CustomStringConvertible {
    public let description: String
}

/// The embeddings in the log, encrypted: each under a data key of its own (AES-GCM, 256 bits), the
/// data keys in `face_keys` wrapped under the master key (migration 010). Destroying a face's data keys
/// forgets its biometrics for good, without touching the append-only, hash-chained log.
public struct Biometrics: Sendable {
    public let masterKeys: MasterKeys

    public init(masterKeys: MasterKeys) {
        self.masterKeys = masterKeys
    }

    /// A data key, its embedding sealed under it, and the key as `face_keys` stores it.
    struct Sealed {
        let keyId: UUID
        let embedding: [UInt8]
        let wrappedKey: [UInt8]
        let kekId: String
    }

    /// Encrypts one embedding (its float32 bytes) of a face under a new data key. The ciphertext is
    /// bound to its key id, and the wrapped key to its id, collection and face (authenticated data): a
    /// wrapped key copied to another row, or a ciphertext moved to another event, does not open.
    func seal(_ embedding: [UInt8], collectionId: String, faceId: String) throws -> Sealed {
        let dataKey = SymmetricKey(size: .bits256)
        let keyId = UUID.random()
        let master = masterKeys.current
        let sealed = try AES.GCM.seal(embedding, using: dataKey, authenticating: Self.embeddingContext(keyId))
        let wrapped = try dataKey.withUnsafeBytes {
            try AES.GCM.seal(Data($0), using: master.key, authenticating: Self.keyContext(keyId, collectionId, faceId))
        }
        return Sealed(keyId: keyId, embedding: Array(sealed.combined!), wrappedKey: Array(wrapped.combined!), kekId: master.id)
    }

    static func embeddingContext(_ keyId: UUID) -> Data { Data("faceledger embedding \(keyId.uuidString.lowercased())".utf8) }

    static func keyContext(_ keyId: UUID, _ collectionId: String, _ faceId: String) -> Data {
        Data("faceledger data key \(keyId.uuidString.lowercased()) \(collectionId.utf8.count):\(collectionId) \(faceId)".utf8)
    }

    /// The events with every encrypted embedding opened: its clear bytes, or none when its data key
    /// was destroyed (the face was forgotten). Embeddings stored in clear pass unchanged. A data key
    /// wrapped under a master key this process does not hold is an error, never taken for forgotten.
    public func open<Event: FoldableEvent>(_ events: [Event], in session: PostgresSession) throws -> [Event] {
        var keyIds: [Int: UUID] = [:]
        for (index, event) in events.enumerated() where event.type == EventType.faceImported.rawValue && event.embedding != nil {
            if let keyId = LedgerEvent.keyId(inFaceImported: event.data).flatMap(UUID.init) {
                keyIds[index] = keyId
            }
        }
        guard !keyIds.isEmpty else { return events }
        let dataKeys = try unwrappedKeys(Array(Set(keyIds.values)), in: session)
        var opened = events
        for (index, keyId) in keyIds {
            guard let key = dataKeys[keyId] else {
                opened[index].embedding = nil  // forgotten
                continue
            }
            do {
                opened[index].embedding = Array(
                    try AES.GCM.open(
                        AES.GCM.SealedBox(combined: opened[index].embedding ?? []), using: key,
                        authenticating: Self.embeddingContext(keyId)))
            } catch {
                throw BiometricsError(description: "the embedding of event \(events[index].position) does not open under its data key")
            }
        }
        return opened
    }

    private func unwrappedKeys(_ keyIds: [UUID], in session: PostgresSession) throws -> [UUID: SymmetricKey] {
        var keys: [UUID: SymmetricKey] = [:]
        // One key at a time, through the key's index, whatever the statistics say (`PartialState`'s
        // lookups, and why).
        for row in try session.query(
            """
            SELECT r.* FROM unnest($1::uuid[]) AS k(key_id)
            CROSS JOIN LATERAL (SELECT key_id, kek_id, wrapped, collection_id, face_id FROM face_keys AS t WHERE t.key_id = k.key_id OFFSET 0) AS r
            """,
            [.uuidArray(keyIds)])
        {
            let kekId: String = try row.decode(at: 1)
            guard let master = masterKeys.key(id: kekId) else { throw Self.unknownMasterKey(kekId) }
            do {
                let keyId: UUID = try row.decode(at: 0)
                let raw = try AES.GCM.open(
                    AES.GCM.SealedBox(combined: try row.decode([UInt8].self, at: 2)), using: master,
                    authenticating: Self.keyContext(keyId, try row.decode(at: 3), try row.decode(at: 4)))
                keys[keyId] = SymmetricKey(data: raw)
            } catch {
                throw BiometricsError(description: "a data key does not unwrap under master key \(kekId)")
            }
        }
        return keys
    }

    /// Refuses a master key that does not fit the database: some data key is wrapped under a key
    /// this process does not hold (a wrong or missing key file).
    public func verify(in session: PostgresSession) throws {
        // The distinct master key ids, one index probe each (a recursive skip scan): at start-up this
        // costs the handful of keys ever used, not a scan of every face's data key.
        let used = try session.query(
            """
            WITH RECURSIVE used(id) AS (
                SELECT min(kek_id) FROM face_keys
                UNION ALL
                SELECT (SELECT min(kek_id) FROM face_keys WHERE kek_id > used.id) FROM used WHERE used.id IS NOT NULL)
            SELECT id FROM used WHERE id IS NOT NULL
            """
        ).map { try $0.decode(String.self, at: 0) }
        let held = Set(masterKeys.ids)
        if let unknown = used.first(where: { !held.contains($0) }) { throw Self.unknownMasterKey(unknown) }
    }

    private static func unknownMasterKey(_ kekId: String) -> BiometricsError {
        BiometricsError(
            description: """
                this database's face embeddings are encrypted under master key \(kekId), which is not among the keys \
                given: start with the right --master-key-file
                """)
    }

    // MARK: Inside a command batch's transaction

    /// The statement that stores the data keys of a batch's new embeddings.
    static func storing(_ keys: [(sealed: Sealed, faceId: String)], collectionId: String) -> PostgresStatement? {
        guard !keys.isEmpty else { return nil }
        return PostgresStatement(
            """
            INSERT INTO face_keys (key_id, collection_id, face_id, kek_id, wrapped)
            SELECT k.key_id, $1, k.face_id, k.kek_id, k.wrapped
            FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bytea[]) AS k(key_id, face_id, kek_id, wrapped)
            """,
            [
                .text(collectionId), .uuidArray(keys.map(\.sealed.keyId)), .textArray(keys.map(\.faceId)),
                .textArray(keys.map(\.sealed.kekId)), .byteaArray(keys.map(\.sealed.wrappedKey)),
            ])
    }

    /// The statement that destroys every data key of the faces: their embeddings in the log can no
    /// longer be read.
    static func destroyingKeys(of faceIds: [String], collectionId: String) -> PostgresStatement? {
        guard !faceIds.isEmpty else { return nil }
        return PostgresStatement(
            "DELETE FROM face_keys WHERE collection_id = $1 AND face_id = ANY($2)",
            [.text(collectionId), .textArray(faceIds)])
    }

    /// The statement that destroys every data key of a collection (it was deleted: its faces'
    /// biometrics go with it).
    static func destroyingKeys(ofCollection collectionId: String) -> PostgresStatement {
        PostgresStatement("DELETE FROM face_keys WHERE collection_id = $1", [.text(collectionId)])
    }

    /// How many data keys are still wrapped under a key other than the current one.
    public func keysUnderOlderMasterKeys(in session: PostgresSession) throws -> Int {
        try session.query("SELECT count(*) FROM face_keys WHERE kek_id <> $1", [.text(masterKeys.current.id)])[0].decode(Int.self, at: 0)
    }

    /// The faces among `faceIds` whose embedding the log holds in clear (written before encryption,
    /// not migrated by `encrypt-log`): forgetting cannot destroy those.
    static func facesInClear(_ faceIds: [String], collectionId: String, in session: PostgresSession) throws -> [String] {
        guard !faceIds.isEmpty else { return [] }
        return try session.query(
            """
            SELECT DISTINCT substr(stream, \(StreamName.facePrefix.count + 1)) FROM events
            WHERE collection_id = $1 AND stream = ANY($2) AND type = \(EventType.faceImported.sql) AND embedding IS NOT NULL
              AND length(embedding) > 0 AND NOT (data ? 'keyId')
            """, [.text(collectionId), .textArray(faceIds.map(StreamName.face))]
        ).map { try $0.decode(String.self, at: 0) }
    }

    // MARK: Rotation

    /// Re-wraps up to `limit` data keys that are not under the current master key; returns how many.
    /// Rows another rotation holds are skipped, so several runs may overlap; the log is not touched.
    public func rewrap(limit: Int, in session: PostgresSession) throws -> Int {
        let current = masterKeys.current
        let older = masterKeys.ids.filter { $0 != current.id }
        guard !older.isEmpty else { return 0 }
        return try session.transaction {
            // By the older keys' ids, so the kek_id index finds the rows (a re-wrapped row leaves the range).
            let rows = try session.query(
                """
                SELECT key_id, kek_id, wrapped, collection_id, face_id FROM face_keys WHERE kek_id = ANY($1)
                LIMIT $2 FOR UPDATE SKIP LOCKED
                """, [.textArray(older), .int64(Int64(limit))])
            var ids: [UUID] = []
            var wrapped: [[UInt8]?] = []
            for row in rows {
                let kekId: String = try row.decode(at: 1)
                guard let old = masterKeys.key(id: kekId) else { throw Self.unknownMasterKey(kekId) }
                let keyId: UUID = try row.decode(at: 0)
                let context = Self.keyContext(keyId, try row.decode(at: 3), try row.decode(at: 4))
                let raw = try AES.GCM.open(
                    AES.GCM.SealedBox(combined: try row.decode([UInt8].self, at: 2)), using: old,
                    authenticating: context)
                ids.append(keyId)
                wrapped.append(Array(try AES.GCM.seal(raw, using: current.key, authenticating: context).combined!))
            }
            guard !ids.isEmpty else { return 0 }
            try session.query(
                """
                UPDATE face_keys SET kek_id = $1, wrapped = k.wrapped
                FROM unnest($2::uuid[], $3::bytea[]) AS k(key_id, wrapped) WHERE face_keys.key_id = k.key_id
                """, [.text(current.id), .uuidArray(ids), .byteaArray(wrapped)])
            return ids.count
        }
    }
}

extension Biometrics {
    /// The one-off migration of a log written before embeddings were encrypted (README: "Privacy"):
    /// every FaceImported event whose embedding is in clear gets a data key (named in its payload) and
    /// its embedding encrypted, and the hash chain is computed again over the whole log — the only
    /// change to history FaceLedger ever makes, done before the first release, as the schema's owner,
    /// with no server running. Digests signed before it no longer verify; sign a new one. Returns how
    /// many embeddings it encrypted (0: nothing to do, nothing changed).
    public func encryptLegacyEmbeddings(in session: PostgresSession) throws -> Int {
        try session.transaction {
            try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
            let rows = try session.query(
                """
                SELECT position, collection_id, stream, embedding FROM events
                WHERE type = \(EventType.faceImported.sql) AND embedding IS NOT NULL AND length(embedding) > 0 AND NOT (data ? 'keyId')
                ORDER BY position
                """)
            guard !rows.isEmpty else { return 0 }
            var positions: [Int64?] = []
            var keyIds: [String?] = []
            var sealedEmbeddings: [[UInt8]?] = []
            var keysByCollection: [String: [(sealed: Sealed, faceId: String)]] = [:]
            for row in rows {
                let collectionId: String = try row.decode(at: 1)
                let faceId = String(try row.decode(String.self, at: 2).dropFirst(StreamName.facePrefix.count))
                let sealed = try seal(try row.decode([UInt8].self, at: 3), collectionId: collectionId, faceId: faceId)
                positions.append(try row.decode(Int64.self, at: 0))
                keyIds.append(sealed.keyId.uuidString.lowercased())
                sealedEmbeddings.append(sealed.embedding)
                keysByCollection[collectionId, default: []].append((sealed, faceId))
            }
            _ = try session.pipeline(keysByCollection.compactMap { Self.storing($1, collectionId: $0) })
            // The append-only trigger is off only inside this transaction: ALTER TABLE holds the table
            // exclusively until commit, and it is on again at commit (as in migration 006).
            try session.executeScript("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
            try session.query(
                """
                UPDATE events AS e SET data = e.data || jsonb_build_object('keyId', k.key_id), embedding = k.sealed
                FROM unnest($1::int8[], $2::text[], $3::bytea[]) AS k(position, key_id, sealed)
                WHERE e.position = k.position
                """, [.int64Array(positions), .textArray(keyIds), .byteaArray(sealedEmbeddings)])
            // Faces deleted or forgotten since (or whose collection was deleted) keep no key: their
            // embeddings are encrypted and shredded at once.
            try session.query(
                """
                DELETE FROM face_keys USING unnest($1::int8[], $2::text[]) AS k(position, key_id)
                WHERE face_keys.key_id = k.key_id::uuid AND EXISTS (
                    SELECT 1 FROM events AS later
                    WHERE later.collection_id = face_keys.collection_id AND later.position > k.position
                      AND ((later.stream = '\(StreamName.facePrefix)' || face_keys.face_id AND later.type IN (\(EventType.sql(.faceDeleted, .faceForgotten))))
                           OR (later.stream = '\(StreamName.collection)' AND later.type = \(EventType.collectionDeleted.sql))))
                """, [.int64Array(positions), .textArray(keyIds)])
            try session.executeScript(
                """
                UPDATE events AS e SET hash = chained.hash
                FROM (SELECT x.position,
                             event_chain(NULL::bytea, event_hash_fields(
                                 x.position, x.collection_id, x.stream, x.version, x.type, x.schema_version, x.data, x.embedding,
                                 x.principal, x.request_id, x.client_token, x.operation, x.source_address, x.command_id,
                                 x.recorded_at)) OVER (ORDER BY x.position ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hash
                      FROM events AS x) AS chained
                WHERE e.position = chained.position AND e.hash IS DISTINCT FROM chained.hash;
                ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete;
                """)
            return rows.count
        }
    }
}
