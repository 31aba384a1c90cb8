import Foundation

/// The semantic pass: SETTINGS fields, ORCHESTRATOR timeline, files. Reports into a bag
/// and returns a plan that is only used when the bag has no errors.
struct Checker {
    /// The script being checked; relative paths in it resolve against its directory.
    let file: SourceFile
    /// The environment, resolver, CPU count and handler inspector: all the check takes from outside.
    let options: PlanOptions
    /// The 1-based line of a range's start, for "the first is at line N" messages.
    var lineOf: (SourceRange) -> Int

    /// A checker for `file`; nothing is read or resolved until ``check(_:_:)``.
    init(file: SourceFile, options: PlanOptions) {
        self.file = file
        self.options = options
        self.lineOf = { file.location(of: $0.start).line }
    }

    // MARK: token helpers

    /// The text a token stands for: a name or value as written, a string with its escapes
    /// decoded, a keyword's spelling, or else the token's source text.
    func text(_ t: Token) -> String {
        switch t.kind {
        case .value(let s), .identifier(let s): s
        case .string(let raw): Token.decode(raw: raw)
        case .keyword(let k): k.rawValue
        default: file.text(t.range)
        }
    }

    /// The text of a value, quoted or not: the original accepts `PORT = "55555"` and
    /// `OFFSET "500ms"` as it accepts `PORT = 55555` (its syntax docs show both).
    func valueText(_ t: Token) -> String? {
        switch t.kind {
        case .value(let s): s
        case .string(let raw): Token.decode(raw: raw).trimmingCharacters(in: .whitespaces)
        default: nil
        }
    }

    /// A whole number from a value token (quoted or not), with a located error otherwise.
    func integer(_ t: Token, _ what: String, _ d: inout DiagnosticBag) -> Int? {
        guard let s = valueText(t) else {
            d.error("\(what) must be a whole number, got \(t.kind.spelling)", at: t.range)
            return nil
        }
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            d.error("\(what) must be a whole number, got '\(s)'", at: t.range)
            return nil
        }
        guard let v = Int(s), v <= Int(Int32.max) * 1024 else {
            d.error("\(what) is too large: '\(s)'", at: t.range)
            return nil
        }
        return v
    }

    /// A size such as `64MiB` (quoted or not) in bytes; an unknown unit, a malformed size or
    /// an overflow is reported at the token and gives nil.
    func size(_ t: Token, _ what: String, _ d: inout DiagnosticBag) -> Int? {
        guard let s = valueText(t) else {
            d.error("\(what) must be a size such as 64MiB, got \(t.kind.spelling)", at: t.range)
            return nil
        }
        switch SizeLiteral.parse(s) {
        case .success(let v): return v
        case .failure(.badUnit(let u)):
            d.error("unknown size unit '\(u)' in '\(s)'; expected \(SizeLiteral.unitList)", at: t.range)
        case .failure(.malformed):
            d.error("'\(s)' is not a size; expected a whole number and a unit such as 64MiB", at: t.range)
        case .failure(.tooLarge):
            d.error("size '\(s)' is too large", at: t.range)
        }
        return nil
    }

    /// A quoted string that must be one of `choices`, in exact case (`"tcp"` is not `"TCP"`);
    /// a choice that differs only in case is offered as "did you mean". An unquoted value is
    /// an error.
    ///
    /// - Returns: The choice as written, or nil once the problem is reported.
    func quoted(_ t: Token, _ what: String, _ choices: [String], _ d: inout DiagnosticBag) -> String? {
        let list = choices.map { "\"\($0)\"" }.joined(separator: " or ")
        guard case .string(let raw) = t.kind else {
            d.error("\(what) must be \(list) in quotes, got \(t.kind.spelling)", at: t.range)
            return nil
        }
        let v = Token.decode(raw: raw)
        // Exact case, as in the original: "tcp" is not "TCP".
        if choices.contains(v) { return v }
        if let c = choices.first(where: { $0.lowercased() == v.lowercased() }) {
            d.error(
                "\(what) must be \(list), got \"\(v)\"; did you mean \"\(c)\"? (choices are exact-case)", at: t.range)
        } else {
            d.error("\(what) must be \(list), got \"\(v)\"", at: t.range)
        }
        return nil
    }

    /// A duration such as `250ms` (quoted or not) in nanoseconds; a number without a unit is
    /// reported with the spellings to use instead.
    func duration(_ t: Token, _ what: String, _ d: inout DiagnosticBag) -> Nanoseconds? {
        guard let s = valueText(t) else {
            d.error("\(what) must be a duration such as 250ms, got \(t.kind.spelling)", at: t.range)
            return nil
        }
        switch DurationLiteral.parse(s) {
        case .success(let ns): return ns
        case .failure(.bareNumber):
            d.error(
                "\(what) needs a time unit: write \(s)ms or \(s)s (units: \(DurationLiteral.unitList))", at: t.range)
        case .failure(.badUnit(let u)):
            d.error("unknown time unit '\(u)' in '\(s)'; expected \(DurationLiteral.unitList)", at: t.range)
        case .failure(.malformed):
            d.error("'\(s)' is not a duration; expected a number and a unit such as 250ms or 1.5s", at: t.range)
        case .failure(.tooLarge):
            d.error("duration '\(s)' is too large", at: t.range)
        }
        return nil
    }

    // MARK: paths

    /// Decodes a path string, expands `$NAME`/`${NAME}` (with --expand-envs) and `~/`, and
    /// makes it absolute against the script's directory.
    private func path(_ t: Token, _ d: inout DiagnosticBag) -> String? {
        guard case .string(let raw) = t.kind else { return nil }
        var p = Token.decode(raw: raw, protectDollar: options.expandEnvironment)
        if options.expandEnvironment {
            var out = ""
            var scalars = Array(p.unicodeScalars)[...]
            while let c = scalars.popFirst() {
                // U+E001 quotes the private-use character after it; U+E000 is an escaped `$`.
                if c == "\u{E001}", let quoted = scalars.popFirst() {
                    out.unicodeScalars.append(quoted)
                    continue
                }
                if c == "\u{E000}" {
                    out.append("$")
                    continue
                }
                guard c == "$" else {
                    out.unicodeScalars.append(c)
                    continue
                }
                var name = ""
                if scalars.first == "{" {
                    scalars.removeFirst()
                    guard let close = scalars.firstIndex(of: "}") else {
                        d.error("unterminated ${ in path; expected '}' after the variable name", at: t.range)
                        return nil
                    }
                    name = String(String.UnicodeScalarView(scalars[..<close]))
                    scalars = scalars[(close + 1)...]
                } else {
                    while let n = scalars.first, n == "_" || n.properties.isAlphabetic || ("0"..."9").contains(n) {
                        name.unicodeScalars.append(n)
                        scalars.removeFirst()
                    }
                }
                guard !name.isEmpty else {
                    out.append("$")
                    continue
                }
                guard let value = options.environment[name] else {
                    d.error(
                        "environment variable \(name) is not set (the path uses $\(name) and --expand-envs is on)",
                        at: t.range)
                    return nil
                }
                out += value
            }
            p = out
        }
        if p.isEmpty {
            d.error("the path is empty", at: t.range)
            return nil
        }
        // The system would read a path only up to its first NUL byte: a different file.
        if p.utf8.contains(0) {
            d.error("the path contains a NUL byte; paths cannot hold one", at: t.range)
            return nil
        }
        if p == "~" || p.hasPrefix("~/") {
            let home = options.environment["HOME"] ?? NSHomeDirectory()
            p = home + p.dropFirst()
        }
        if !p.hasPrefix("/") {
            let cwd = FileManager.default.currentDirectoryPath
            let dir = (file.path as NSString).deletingLastPathComponent
            let base = dir.isEmpty ? cwd : dir
            let nextToScript = ((base as NSString).appendingPathComponent(p) as NSString).standardizingPath
            let inWorkingDirectory = ((cwd as NSString).appendingPathComponent(p) as NSString).standardizingPath
            // The original resolved paths from the working directory: a script written for it
            // may name a file that is there and not next to the script. Use it, and say so.
            if !FileManager.default.fileExists(atPath: nextToScript), nextToScript != inWorkingDirectory,
                FileManager.default.fileExists(atPath: inWorkingDirectory)
            {
                d.warning(
                    "\(Token.decode(raw: raw)) is not next to the script but is in the working directory; using \(inWorkingDirectory) (paths are resolved from the script's folder)",
                    at: t.range)
                return inWorkingDirectory
            }
            return nextToScript
        }
        return (p as NSString).standardizingPath
    }

    /// Reads a file named in the script; problems are located at the path token.
    private func readFile(_ path: String, _ what: String, _ t: Token, _ d: inout DiagnosticBag) -> [UInt8]? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            var hint = ""
            // An escaped `\$` is a plain dollar sign: no hint for it.
            if case .string(let raw) = t.kind, Token.decode(raw: raw, protectDollar: true).contains("$"),
                !options.expandEnvironment
            {
                hint = "; the path has a '$': to expand environment variables, pass --expand-envs (-e)"
            }
            d.error("\(what) not found: \(path)\(hint)", at: t.range)
            return nil
        }
        if isDir.boolValue {
            d.error("\(what) is a directory, expected a file: \(path)", at: t.range)
            return nil
        }
        switch FileBytes.read(path) {
        case .success(let bytes):
            return bytes
        case .failure(let why):
            d.error("\(what) cannot be read (\(why.reason)): \(path)", at: t.range)
            return nil
        }
    }

    // MARK: the script

    /// Checks a parsed script and builds its plan: the first SETTINGS and ORCHESTRATOR blocks
    /// (any further one is an error, as is an ORCHESTRATOR whose name differs), every field,
    /// the timeline, and the shard split — SHARDS, or else the CPU count capped at the session
    /// count. Every independent problem goes into `d`.
    ///
    /// - Returns: The plan, or nil when `d` holds errors, including any reported before the call.
    mutating func check(_ syntax: ScriptSyntax, _ d: inout DiagnosticBag) -> Plan? {
        let fileStart = SourceRange(start: 0, end: 0)
        guard let settings = syntax.settings.first else {
            d.error("the script has no SETTINGS block; expected SETTINGS <name> { … }", at: fileStart)
            if syntax.orchestrators.isEmpty {
                d.error("the script has no ORCHESTRATOR block; expected ORCHESTRATOR <name> { … }", at: fileStart)
            }
            return nil
        }
        for extra in syntax.settings.dropFirst() {
            d.error(
                "a script has one SETTINGS block; the first is at line \(lineOf(settings.keywordRange))",
                at: extra.keywordRange)
        }
        for extra in syntax.orchestrators.dropFirst() {
            d.error(
                "a script has one ORCHESTRATOR block; the first is at line \(lineOf(syntax.orchestrators[0].keywordRange))",
                at: extra.keywordRange)
        }
        var fields = checkSettings(settings, &d)
        guard let orchestrator = syntax.orchestrators.first else {
            d.error(
                "the script has no ORCHESTRATOR block; expected ORCHESTRATOR \(settings.name) { … }",
                at: SourceRange(start: file.bytes.count, end: file.bytes.count))
            return nil
        }
        if orchestrator.name != settings.name {
            d.error(
                "ORCHESTRATOR '\(orchestrator.name)' names no SETTINGS block; expected '\(settings.name)'",
                at: orchestrator.nameRange)
        }
        let timeline = checkTimeline(orchestrator, &fields, &d)

        // Shards: default = CPU cores, capped at the session count.
        var shardCount = 1
        let sessions = timeline.sessionCount ?? 0
        if let (n, t) = fields.shards {
            shardCount = n
            if sessions > 0, n > sessions {
                d.error(
                    "SHARDS = \(n) is more than the \(sessions) created sessions; use at most \(sessions)",
                    at: t.range)
            }
        } else {
            shardCount = max(1, min(options.cpuCount, max(sessions, 1)))
        }
        if timeline.usesSend, fields.packetsField == nil, let first = timeline.firstSendRange {
            d.error("SEND needs packets, but SETTINGS has no PACKETS { id : \"file.bin\" } field", at: first)
        }
        if let r = fields.responseField, !timeline.sends.contains(where: { $0.counter != nil }) {
            d.error(
                "RESPONSE matches replies to requests, and a request is a payload with a COUNTER; no SEND has one (add COUNTER <start>:<length> \"big\":1 to a SEND)",
                at: r.keyRange)
        }
        let expectations = checkExpect(syntax.expects, fields, &d)
        guard !d.hasErrors, let session = fields.session, let port = fields.port else { return nil }
        let shards = Self.split(sessions, into: shardCount)
        let settingsValue = Settings(
            session: session, port: port, headerSize: fields.headerSize, bodyMax: fields.bodyMax, read: fields.read,
            repeatPayloads: fields.repeatPayloads, sampleRate: fields.sampleRate, shardCount: shardCount,
            headerLength: fields.headerLength, handlerMemory: fields.handlerMemory, response: fields.response,
            responseTimeout: fields.responseTimeout, sequence: fields.sequence)
        var plan = Plan(
            scriptPath: file.path, name: settings.name, settings: settingsValue,
            endpoints: fields.endpoints.map {
                Endpoint(host: $0.0, addresses: $0.1.map { ResolvedAddress(ip: $0, port: port) })
            },
            packets: fields.packets, sessionCount: sessions, shards: shards, actions: timeline.actions,
            sends: timeline.sends, handler: fields.handler)
        plan.expectations = expectations
        plan.settings.sources = fields.sources
        plan.settings.connectWindow = fields.connectWindow
        if session == .tls { plan.settings.tls = fields.tls }
        var module: [UInt8]?
        if case .wasm(let w) = fields.handler { module = w.bytes }
        let tlsFiles =
            session == .tls ? [fields.tls.ca, fields.tls.certificate, fields.tls.key].compactMap { $0?.bytes } : []
        plan.identity = Plan.identity(
            script: file.bytes, packets: fields.packets.map(\.bytes), handler: module, tlsFiles: tlsFiles)
        return plan
    }

    /// Contiguous blocks as even as possible; the first `n % s` shards get one more.
    static func split(_ n: Int, into s: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        for i in 0..<s {
            let size = n / s + (i < n % s ? 1 : 0)
            out.append(start..<(start + size))
            start += size
        }
        return out
    }

    // MARK: SETTINGS

    /// What SETTINGS says, field by field, as far as it checked out; defaults where a field
    /// is absent or invalid.
    struct Fields {
        var session: SessionKind?
        var port: Int?
        var headerSize: Int?
        var bodyMax: Int?
        var read = false
        var repeatPayloads = false
        /// SAMPLERATE; 0 in the script means this default, 100.
        var sampleRate = 100
        /// SHARDS with its token: the check against the session count comes after the timeline.
        var shards: (Int, Token)?
        var headerLength: HeaderLength?
        var handlerMemory = SizeLiteral.defaultHandlerMemory
        /// Each ENDPOINTS host as written (trimmed) with its numeric addresses, in script order.
        var endpoints: [(String, [String])] = []
        /// Packets whose files were read, in script order; one whose file failed is only in
        /// `packetTokens`.
        var packets: [Packet] = []
        /// Every packet id defined in PACKETS with its path token, whether its file was read or
        /// not: for duplicate-id, unknown-id and "never sent" messages.
        var packetTokens: [String: Token] = [:]
        /// The PACKETS list's range, when the field is present (a SEND without it is an error).
        var packetsField: SourceRange?
        var handler: HandlerSpec = .nop
        /// The HANDLER path token once a module was read: where handler problems are reported.
        var handlerToken: Token?
        /// (ext) RESPONSE and TIMEOUT, with their fields for messages.
        var response: ResponseMatch?
        var responseField: FieldSyntax?
        var responseTimeout: Nanoseconds = 5_000_000_000
        var timeoutField: FieldSyntax?
        /// (ext) SEQUENCE, with its field for messages.
        var sequence: HeaderLength?
        var sequenceField: FieldSyntax?
        /// (ext) SOURCES expanded, their family, and the field for messages.
        var sources: [String] = []
        var sourceSet: Set<String> = []
        var sourcesIPv6: Bool?
        var sourcesField: FieldSyntax?
        var connectWindow = 1024
        /// (ext) The TLS block as checked, and its field.
        var tls = TLSSettings()
        var tlsField: FieldSyntax?
    }

    /// Checks each SETTINGS field (a field given twice is reported and its later setting
    /// ignored), then the required fields and the rules between fields: READ needs HEADERSIZE
    /// (on TCP) and BODYMAX, HEADER_LENGTH must lie inside the header, UDP packets must fit in
    /// one datagram, and a WASM handler must fit in HANDLER_MEMORY and, on TCP, have a way to
    /// find body lengths (`handle_header` or HEADER_LENGTH).
    private func checkSettings(_ block: SettingsSyntax, _ d: inout DiagnosticBag) -> Fields {
        var f = Fields()
        var seen: [Keyword: FieldSyntax] = [:]
        for field in block.fields {
            if let first = seen[field.key] {
                d.error(
                    "\(field.key.rawValue) is set twice; the first setting is at line \(lineOf(first.keyRange))",
                    at: field.keyRange)
                continue
            }
            seen[field.key] = field
        }
        let order = block.fields.filter { seen[$0.key]?.keyRange == $0.keyRange }
        for field in order {
            let name = field.key.rawValue
            switch (field.key, field.value) {
            case (.SESSION, .scalar(let t)):
                if let s = quoted(t, name, ["TCP", "UDP", "TLS"], &d) {
                    f.session = SessionKind(rawValue: s)
                }
            case (.TLS, .block(let items, _)):
                f.tlsField = field
                checkTLS(items, &f, &d)
            case (.PORT, .scalar(let t)):
                if let v = integer(t, name, &d) {
                    if (1...65535).contains(v) {
                        f.port = v
                    } else {
                        d.error("PORT must be between 1 and 65535, got \(v)", at: t.range)
                    }
                }
            case (.HEADERSIZE, .scalar(let t)):
                if let v = integer(t, name, &d) {
                    if v == 0 {
                        d.error("HEADERSIZE must be greater than 0", at: t.range)
                    } else if v > 65_536 {
                        d.error("HEADERSIZE must be at most 65536 bytes, got \(v)", at: t.range)
                    } else {
                        f.headerSize = v
                    }
                }
            case (.BODYMAX, .scalar(let t)):
                if let v = integer(t, name, &d) {
                    if v == 0 {
                        d.error("BODYMAX must be greater than 0", at: t.range)
                    } else if v > 1 << 30 {
                        d.error("BODYMAX must be at most 1073741824 bytes (1 GiB), got \(v)", at: t.range)
                    } else {
                        f.bodyMax = v
                    }
                }
            case (.READ, .scalar(let t)):
                if let v = quoted(t, name, ["true", "false"], &d) { f.read = v == "true" }
            case (.REPEAT, .scalar(let t)):
                if let v = quoted(t, name, ["true", "false"], &d) { f.repeatPayloads = v == "true" }
            case (.SAMPLERATE, .scalar(let t)):
                if let v = integer(t, name, &d) { f.sampleRate = v == 0 ? 100 : v }
            case (.SHARDS, .scalar(let t)):
                if let v = integer(t, name, &d) {
                    if v == 0 {
                        d.error("SHARDS must be at least 1", at: t.range)
                    } else if v > 1024 {
                        d.error("SHARDS must be at most 1024, got \(v)", at: t.range)
                    } else {
                        f.shards = (v, t)
                    }
                }
            case (.HANDLER, .scalar(let t)):
                checkHandler(t, &f, &d)
            case (.HANDLER_MEMORY, .scalar(let t)):
                if let v = size(t, name, &d) {
                    if v < SizeLiteral.wasmPage || v > SizeLiteral.wasmMaxMemory {
                        d.error(
                            "HANDLER_MEMORY must be between 64KiB (one WebAssembly page) and 4GiB, got \(SizeLiteral.describe(v))",
                            at: t.range)
                    } else {
                        f.handlerMemory = v
                    }
                }
            case (.SOURCES, .list(let items, let r)):
                f.sourcesField = field
                if items.isEmpty { d.error("SOURCES is empty; list at least one local address", at: r) }
                for item in items { checkSource(item, &f, &d) }
            case (.CONNECT_WINDOW, .scalar(let t)):
                if let v = integer(t, name, &d) {
                    if v < 1 || v > 65_536 {
                        d.error("CONNECT_WINDOW must be 1 to 65536 connects in flight per shard, got \(v)", at: t.range)
                    } else {
                        f.connectWindow = v
                    }
                }
            case (.ENDPOINTS, .list(let items, let r)):
                if items.isEmpty { d.error("ENDPOINTS is empty; list at least one host or address", at: r) }
                for item in items { checkEndpoint(item, &f, &d) }
            case (.PACKETS, .packets(let entries, let r)):
                f.packetsField = r
                if entries.isEmpty { d.error("PACKETS is empty; list at least one id : \"file.bin\"", at: r) }
                for e in entries { checkPacket(e, &f, &d) }
            case (.RESPONSE, _), (.TIMEOUT, _), (.SEQUENCE, _):
                checkMeasureField(field, &f, &d)
            case (.HEADER_LENGTH, .headerLength(let o, let s, let e)):
                if let h = byteField(
                    o, s, e, "HEADER_LENGTH", sizeError: "the HEADER_LENGTH size must be 1 to 8 bytes", &d)
                {
                    f.headerLength = h
                }
            case (_, .scalar(let t)):
                d.error("\(name) expects a list in braces, such as \(name) { … }", at: t.range)
            default:
                d.error("\(name) expects a single value, such as \(name) = …", at: field.keyRange)
            }
        }
        // Required fields and cross-field rules.
        func missing(_ k: Keyword, _ example: String) {
            d.error(
                "SETTINGS '\(block.name)' is missing the required field \(k.rawValue) (e.g. \(example))",
                at: block.nameRange)
        }
        if seen[.SESSION] == nil { missing(.SESSION, "SESSION = \"TCP\"") }
        if seen[.PORT] == nil { missing(.PORT, "PORT = 55555") }
        if seen[.ENDPOINTS] == nil { missing(.ENDPOINTS, "ENDPOINTS { \"127.0.0.1\" }") }
        if let field = f.tlsField, let session = f.session, session != .tls {
            d.error(
                "the TLS block applies to TLS sessions; this script has SESSION = \"\(session.rawValue)\" (write SESSION = \"TLS\")",
                at: field.keyRange)
        }
        if f.session == .udp, let field = f.sourcesField {
            d.error("SOURCES binds TCP sessions; UDP sessions do not take a source address yet", at: field.keyRange)
        }
        if let v6 = f.sourcesIPv6, let field = f.sourcesField {
            for (host, ips) in f.endpoints {
                if let ip = ips.first(where: { $0.contains(":") != v6 }) {
                    d.error(
                        "SOURCES are \(v6 ? "IPv6" : "IPv4") but endpoint '\(host)' is \(ip) (\(v6 ? "IPv4" : "IPv6")); a session binds a source of its destination's family",
                        at: field.valueRange)
                    break
                }
            }
        }
        if f.read {
            let readRange = seen[.READ]!.valueRange
            if f.session != .udp, seen[.HEADERSIZE] == nil {
                d.error(
                    "READ = \"true\" needs HEADERSIZE: the fixed size of each message header in bytes", at: readRange)
            }
            if seen[.BODYMAX] == nil {
                d.error(
                    "READ = \"true\" needs BODYMAX: the largest body to accept before closing the session",
                    at: readRange)
            }
        }
        if let hl = f.headerLength, let hs = f.headerSize, hl.offset + hl.size > hs, let field = seen[.HEADER_LENGTH] {
            d.error(
                "HEADER_LENGTH bytes \(hl.offset)..<\(hl.offset + hl.size) lie outside the \(hs)-byte header",
                at: field.valueRange)
        }
        if f.session == .udp, let field = seen[.HEADER_LENGTH] {
            d.warning("HEADER_LENGTH has no effect on UDP sessions: each datagram is one message", at: field.keyRange)
        }
        if f.session == .udp {
            for p in f.packets where p.bytes.count > PlanBuilder.maxUDPPayload {
                d.error(
                    "packet '\(p.id)' is \(p.bytes.count) bytes, larger than the \(PlanBuilder.maxUDPPayload)-byte maximum UDP datagram",
                    at: f.packetTokens[p.id]!.range)
            }
        }
        checkResponseRules(f, &d)
        if case .wasm(let w) = f.handler, let t = f.handlerToken, let initial = w.initialMemoryBytes,
            initial > f.handlerMemory
        {
            d.error(
                "the module starts with \(SizeLiteral.describe(initial)) of memory, more than HANDLER_MEMORY allows (\(SizeLiteral.describe(f.handlerMemory))); raise HANDLER_MEMORY or give the module less memory",
                at: seen[.HANDLER_MEMORY]?.valueRange ?? t.range)
        }
        if case .wasm(let w) = f.handler, let t = f.handlerToken {
            if !f.read {
                d.warning("the handler is never called because READ is \"false\"", at: t.range)
            } else if f.session != .udp, f.headerLength == nil, !w.exports.isEmpty, !w.hasHandleHeader, !w.refused {
                let what =
                    w.fastPath
                    ? "the module exports no body_length, which reads headers on the fast path (handle_header does too, with alloc and dealloc)"
                    : "the module exports no handle_header"
                d.error(
                    "\(what), so HEADER_LENGTH = <offset>:<size> \"big\"|\"little\" is required to find the body length",
                    at: t.range)
            }
        }
        return f
    }

    /// HANDLER: `"NOP"` keeps the default; anything else must be a path ending in `.wasm`. The
    /// module is read now and given to the inspector, when there is one; its problems are
    /// reported at the path.
    private func checkHandler(_ t: Token, _ f: inout Fields, _ d: inout DiagnosticBag) {
        guard case .string(let raw) = t.kind else {
            d.error("HANDLER must be \"NOP\" or a quoted path to a .wasm module, got \(t.kind.spelling)", at: t.range)
            return
        }
        let written = Token.decode(raw: raw)
        if written == "NOP" { return }
        guard let p = path(t, &d) else { return }
        guard p.lowercased().hasSuffix(".wasm") else {
            let hint = written.uppercased() == "NOP" ? "; did you mean \"NOP\"? (choices are exact-case)" : ""
            d.error("HANDLER must be \"NOP\" or a path ending in .wasm, got \"\(written)\"\(hint)", at: t.range)
            return
        }
        guard let bytes = readFile(p, "handler module", t, &d) else { return }
        var spec = WasmHandlerSpec(path: written, resolvedPath: p, bytes: bytes, exports: [], hasHandleHeader: false)
        if let inspector = options.handlerInspector {
            let r = inspector.inspect(bytes)
            spec.exports = r.exports
            spec.hasHandleHeader = r.hasHandleHeader
            spec.initialMemoryBytes = r.initialMemoryBytes
            spec.fastPath = r.fastPath
            spec.refused = !r.problems.isEmpty
            for problem in r.problems { d.error(problem, at: t.range) }
        }
        f.handler = .wasm(spec)
        f.handlerToken = t
    }

    /// A DNS host name: labels of 1–63 letters, digits and '-' (and '_' when allowed; not
    /// starting or ending with '-'), joined by dots, 253 characters at most (a trailing dot
    /// allowed).
    static func isHostName(_ name: String, allowUnderscore: Bool) -> Bool {
        var n = Substring(name)
        if n.hasSuffix(".") { n = n.dropLast() }
        guard !n.isEmpty, n.utf8.count <= 253 else { return false }
        return n.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy {
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
                        || ($0 == "_" && allowUnderscore)
                }
        }
    }

    /// (ext) The TLS block: `SNI = "name"`, `VERIFY = "true"|"false"`, `CA`/`CERT`/`KEY` =
    /// PEM paths (read now, relative to the script), `ALPN { "h2", … }`. CERT and KEY go
    /// together. The inspector, when there is one, checks the files' contents; its problems
    /// are reported at the file's path.
    private func checkTLS(_ items: [SubFieldSyntax], _ f: inout Fields, _ d: inout DiagnosticBag) {
        let known = ["SNI", "VERIFY", "CA", "CERT", "KEY", "ALPN"]
        let errorsBefore = d.errorCount
        var seen: [String: SubFieldSyntax] = [:]
        for item in items {
            let key = item.key
            guard known.contains(key) else {
                var message = "unknown TLS setting '\(key)'"
                if let s = Suggest.closest(to: key, in: known) { message += "; did you mean \(s)?" }
                d.error(message + "; expected one of " + known.joined(separator: ", "), at: item.name.range)
                continue
            }
            if let first = seen[key] {
                d.error(
                    "TLS \(key) is set twice; the first setting is at line \(lineOf(first.name.range))",
                    at: item.name.range)
                continue
            }
            seen[key] = item
            if key == "ALPN" {
                guard let (tokens, r) = item.list else {
                    d.error(
                        "ALPN expects a list of protocol names, such as ALPN { \"h2\", \"mqtt\" }", at: item.valueRange)
                    continue
                }
                if tokens.isEmpty { d.error("ALPN is empty; list at least one protocol name", at: r) }
                for t in tokens {
                    guard case .string(let raw) = t.kind else {
                        d.error("an ALPN protocol name must be in quotes, got \(t.kind.spelling)", at: t.range)
                        continue
                    }
                    let name = Token.decode(raw: raw)
                    if name.isEmpty || name.utf8.count > 255 {
                        d.error("an ALPN protocol name must be 1 to 255 bytes, got \(name.utf8.count)", at: t.range)
                    } else {
                        f.tls.alpn.append(name)
                    }
                }
                continue
            }
            guard let t = item.value else {
                if item.list != nil {
                    d.error("TLS \(key) expects a single value, such as \(key) = …", at: item.valueRange)
                }
                continue  // no value: the parser said so
            }
            switch key {
            case "SNI":
                guard case .string(let raw) = t.kind, !Token.decode(raw: raw).isEmpty else {
                    d.error("SNI must be a server name in quotes, such as SNI = \"game.example.com\"", at: t.range)
                    continue
                }
                let name = Token.decode(raw: raw)
                // TLS sends host names only (RFC 6066): an address or a malformed name could
                // never be verified, and every connect would fail.
                if SourceAddresses.Address(name) != nil {
                    d.error(
                        "SNI must be a host name, not an address ('\(name)'): TLS sends no address as a server name; leave SNI out to verify the certificate against the endpoint's address",
                        at: t.range)
                    continue
                }
                if !Self.isHostName(name, allowUnderscore: true) {
                    d.error(
                        "SNI '\(name)' is not a host name: letters, digits, '-' and '.' only, labels of 1 to 63 characters",
                        at: t.range)
                    continue
                }
                f.tls.serverName = name
            case "VERIFY":
                if let v = quoted(t, "VERIFY", ["true", "false"], &d) { f.tls.verify = v == "true" }
            default:
                guard case .string(let raw) = t.kind, let p = path(t, &d) else {
                    d.error("\(key) must be a quoted path to a PEM file, got \(t.kind.spelling)", at: t.range)
                    continue
                }
                let what =
                    key == "CA" ? "CA certificate file" : key == "CERT" ? "client certificate file" : "private key file"
                guard let bytes = readFile(p, what, t, &d) else { continue }
                let file = TLSFile(path: Token.decode(raw: raw), resolvedPath: p, bytes: bytes)
                switch key {
                case "CA": f.tls.ca = file
                case "CERT": f.tls.certificate = file
                default: f.tls.key = file
                }
            }
        }
        if let name = f.tls.serverName, f.tls.verify, !Self.isHostName(name, allowUnderscore: false),
            let t = seen["SNI"]?.value
        {
            // Decided here, VERIFY being anywhere in the block: a name with '_' can be sent,
            // but no certificate check matches it (swift-nio-ssl takes letters, digits, '-'
            // and '.' only).
            d.error(
                "SNI '\(name)' has a '_', which no certificate can be verified against; rename it, or set VERIFY = \"false\"",
                at: t.range)
        }
        if let cert = seen["CERT"], seen["KEY"] == nil {
            d.error("CERT needs KEY: the private key of the client certificate", at: cert.name.range)
        }
        if let key = seen["KEY"], seen["CERT"] == nil {
            d.error("KEY needs CERT: the client certificate the key belongs to", at: key.name.range)
        }
        if let inspector = options.tlsInspector, d.errorCount == errorsBefore {
            for (field, problem) in inspector.inspect(f.tls) {
                d.error(problem, at: seen[field]?.valueRange ?? f.tlsField?.keyRange ?? SourceRange(start: 0, end: 0))
            }
        }
    }

    /// One ENDPOINTS entry: an unquoted IPv4 address, or a quoted host name or address,
    /// resolved now with ``PlanOptions/resolver``. A host listed twice is a warning and is
    /// used once.
    private func checkEndpoint(_ t: Token, _ f: inout Fields, _ d: inout DiagnosticBag) {
        let host: String
        switch t.kind {
        case .value(let s):
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && UInt8($0) != nil }) else {
                d.error("'\(s)' is not an IPv4 address; quote host names and IPv6 addresses (\"::1\")", at: t.range)
                return
            }
            host = s
        case .string(let raw):
            host = Token.decode(raw: raw).trimmingCharacters(in: .whitespaces)
            if host.isEmpty {
                d.error("an endpoint cannot be empty", at: t.range)
                return
            }
        default:
            return
        }
        if f.endpoints.contains(where: { $0.0 == host }) {
            d.warning("endpoint '\(host)' is listed twice; its addresses are used once", at: t.range)
            return
        }
        switch options.resolver(host) {
        case .success(let ips): f.endpoints.append((host, ips))
        case .failure(let e): d.error("cannot resolve endpoint '\(host)': \(e.message)", at: t.range)
        }
    }

    /// (ext) One SOURCES entry, an address or a range `a-b`: expanded, one family for all,
    /// and usable here — a bind test of each address (of a range, its two ends).
    private func checkSource(_ t: Token, _ f: inout Fields, _ d: inout DiagnosticBag) {
        let text: String
        switch t.kind {
        case .value(let s): text = s
        case .string(let raw): text = Token.decode(raw: raw).trimmingCharacters(in: .whitespaces)
        default: return
        }
        switch SourceAddresses.expand(text) {
        case .failure(let e):
            d.error(e.message, at: t.range)
        case .success(let (addresses, v6)):
            if let family = f.sourcesIPv6, family != v6 {
                d.error("SOURCES mixes IPv4 and IPv6 addresses; list one family (that of the endpoints)", at: t.range)
                return
            }
            f.sourcesIPv6 = v6
            for ip in Set([addresses.first!, addresses.last!]) {
                if let why = options.sourceCheck(ip) {
                    d.error("source address \(ip) cannot be used: \(why)", at: t.range)
                    return
                }
            }
            let fresh = addresses.filter { !f.sourceSet.contains($0) }
            if fresh.count < addresses.count {
                d.warning(
                    "\(addresses.count - fresh.count == 1 ? "an address" : "addresses") of '\(text)' \(addresses.count - fresh.count == 1 ? "is" : "are") already in SOURCES; each is used once",
                    at: t.range)
            }
            if f.sources.count + fresh.count > SourceAddresses.maxAddresses {
                d.error("SOURCES holds more than \(SourceAddresses.maxAddresses) addresses", at: t.range)
                return
            }
            f.sources += fresh
            f.sourceSet.formUnion(fresh)
        }
    }

    /// One PACKETS entry: the id must be new, and its file is read now and must not be empty.
    /// The id is recorded before the file is read, so that SENDs naming a packet whose file
    /// failed are not reported a second time.
    private func checkPacket(_ e: PacketEntrySyntax, _ f: inout Fields, _ d: inout DiagnosticBag) {
        guard case .identifier(let id) = e.id.kind else { return }
        if let first = f.packetTokens[id] {
            d.error("packet id '\(id)' is defined twice; the first is at line \(lineOf(first.range))", at: e.id.range)
            return
        }
        f.packetTokens[id] = e.path
        guard let p = path(e.path, &d), let bytes = readFile(p, "packet file", e.path, &d) else { return }
        if bytes.isEmpty {
            d.error("packet file is empty: \(p); a packet needs at least one byte", at: e.path.range)
            return
        }
        f.packets.append(Packet(id: id, path: Token.decode(raw: text(e.path)), resolvedPath: p, bytes: bytes))
    }

    // MARK: ORCHESTRATOR

    /// What the ORCHESTRATOR block amounts to once checked.
    struct Timeline {
        /// CREATE's session count; nil when CREATE is missing or invalid.
        var sessionCount: Int?
        /// The valid actions in script order, with absolute start times.
        var actions: [PlannedAction] = []
        /// The SENDs that ``PlannedAction/Kind/send(_:)`` indexes.
        var sends: [SendSpec] = []
        /// Some action is a SEND, valid or not: then SETTINGS needs PACKETS.
        var usesSend = false
        /// The first SEND keyword: where a missing PACKETS field is reported.
        var firstSendRange: SourceRange?
    }

    /// Session states while walking the timeline.
    private enum State: UInt8 {
        case created, connected, draining, disconnected
    }

    /// Walks the actions in order, adding up their OFFSETs into absolute start times
    /// (saturating at `Int64.max`) and tracking each session's state, so that CONNECT on a
    /// session already connected, SEND or FLOOD on one not connected (or draining), and so on,
    /// are errors at the action's range. CREATE must come first, once. Once all else is valid,
    /// a packet no SEND uses gets a warning.
    private func checkTimeline(_ block: OrchestratorSyntax, _ f: inout Fields, _ d: inout DiagnosticBag) -> Timeline {
        var tl = Timeline()
        if block.actions.isEmpty {
            d.error(
                "ORCHESTRATOR '\(block.name)' has no actions; expected at least CREATE and CONNECT", at: block.nameRange
            )
            return tl
        }
        if block.actions.first?.keyword != .CREATE, !block.actions.contains(where: { $0.keyword == .CREATE }) {
            d.error(
                "ORCHESTRATOR '\(block.name)' has no CREATE; the first action must be CREATE <sessions>",
                at: block.actions[0].keywordRange)
        }
        var states: [State] = []
        // Each DRAIN's range and line, to name the one that drained a session in messages.
        var drains: [(sessions: Range<Int>, line: Int)] = []
        var now: Nanoseconds = 0
        var created = false
        var usedPackets = Set<String>()
        for (i, a) in block.actions.enumerated() {
            var offset = PlanBuilder.defaultOffset
            if let o = a.offset, let v = duration(o, "OFFSET", &d) { offset = v }
            let (sum, overflow) = now.addingReportingOverflow(offset)
            if overflow, now != Int64.max {
                // Reported once, at the OFFSET that crosses the limit (each later one would too).
                d.error(
                    "the OFFSETs add up to more than the longest timeline (\(Int64.max / 3_600_000_000_000)h)",
                    at: a.offset?.range ?? a.keywordRange)
            }
            now = overflow ? Int64.max : sum
            let line = lineOf(a.keywordRange)
            switch a.keyword {
            case .CREATE:
                if created {
                    d.error("CREATE appears twice; sessions are created once, by the first action", at: a.keywordRange)
                    continue
                }
                if i != 0 {
                    d.error("CREATE must be the first action", at: a.keywordRange)
                }
                created = true
                guard let t = a.count, let n = integer(t, "CREATE", &d) else { continue }
                if n == 0 {
                    d.error("CREATE needs at least 1 session", at: t.range)
                    continue
                }
                if n > PlanBuilder.maxSessions {
                    d.error(
                        "CREATE \(n) is more than the \(PlanBuilder.maxSessions) sessions a plan allows", at: t.range)
                    continue
                }
                tl.sessionCount = n
                states = [State](repeating: .created, count: n)
                tl.actions.append(
                    PlannedAction(
                        kind: .create(n), sessions: 0..<n, at: now, offset: offset, line: line,
                        keywordRange: a.keywordRange))
            default:
                guard let rs = a.sessions, let range = sessionRange(rs, a.keyword, tl.sessionCount, &d) else {
                    if a.keyword == .SEND {
                        tl.usesSend = true
                        tl.firstSendRange = tl.firstSendRange ?? a.keywordRange
                    }
                    continue
                }
                let kw = a.keyword.rawValue
                let known = !states.isEmpty
                func firstIn(_ pred: (State) -> Bool) -> Int? {
                    guard known else { return nil }
                    return range.first { pred(states[$0]) }
                }
                func notConnected(_ s: Int) {
                    let why: String =
                        switch states[s] {
                        case .created: "is not connected by then (CONNECT it first)"
                        case .draining:
                            "is draining by then (DRAIN at line \(drains.last { $0.sessions.contains(s) }?.line ?? 0))"
                        default: "is already disconnected"
                        }
                    d.error(
                        "\(kw) \(rs.lower.kind.spellingValue):\(rs.upper.kind.spellingValue): session \(s) \(why)",
                        at: rs.range)
                }
                var kind: PlannedAction.Kind
                switch a.keyword {
                case .CONNECT:
                    if let s = firstIn({ $0 != .created }) {
                        d.error(
                            "CONNECT \(rs.lower.kind.spellingValue):\(rs.upper.kind.spellingValue): session \(s) is already connected; a session connects once",
                            at: rs.range)
                        continue
                    }
                    for s in range where known { states[s] = .connected }
                    kind = .connect
                case .SEND:
                    tl.usesSend = true
                    tl.firstSendRange = tl.firstSendRange ?? a.keywordRange
                    if let s = firstIn({ $0 != .connected }) {
                        notConnected(s)
                        continue
                    }
                    guard let spec = checkSend(a, range, line, f, &d) else { continue }
                    usedPackets.insert(f.packets[spec.packet].id)
                    kind = .send(tl.sends.count)
                    tl.sends.append(spec)
                case .FLOOD:
                    if let s = firstIn({ $0 != .connected }) {
                        notConnected(s)
                        continue
                    }
                    kind = .flood
                case .PACE:
                    if let s = firstIn({ $0 != .connected }) {
                        notConnected(s)
                        continue
                    }
                    guard let syntax = a.pace, let spec = checkPace(syntax, &d) else { continue }
                    kind = .pace(spec)
                case .CHURN:
                    if let s = firstIn({ $0 != .connected }) {
                        notConnected(s)
                        continue
                    }
                    guard let t = a.count, let period = duration(t, "the CHURN period", &d) else { continue }
                    if period <= 0 {
                        d.error("the CHURN period must be more than 0", at: t.range)
                        continue
                    }
                    if period < 10_000_000 {
                        d.warning(
                            "CHURN EVERY \(DurationLiteral.format(period)) is shorter than most connects take under load; a session still connecting at its turn skips it (counted as churnSkipped)",
                            at: t.range)
                    }
                    kind = .churn(period: period)
                case .DRAIN:
                    if let s = firstIn({ $0 != .connected && $0 != .draining }) {
                        notConnected(s)
                        continue
                    }
                    for s in range where known { states[s] = .draining }
                    drains.append((range, line))
                    kind = .drain
                case .DISCONNECT:
                    if let s = firstIn({ $0 == .disconnected }) {
                        d.error(
                            "DISCONNECT \(rs.lower.kind.spellingValue):\(rs.upper.kind.spellingValue): session \(s) is already disconnected; a session disconnects once",
                            at: rs.range)
                        continue
                    }
                    // Sessions never connected are skipped, as in the original: the dry run
                    // says how many.
                    var skipped = 0
                    for s in range where known {
                        if states[s] == .created { skipped += 1 } else { states[s] = .disconnected }
                    }
                    var reset = false
                    if let how = a.packet {
                        guard quoted(how, "how DISCONNECT closes", ["reset"], &d) != nil else { continue }
                        if f.session == .udp {
                            d.error("DISCONNECT \"reset\" sends a TCP RST; UDP sessions have none", at: how.range)
                            continue
                        }
                        reset = true
                    }
                    kind = .disconnect(skipped: skipped, reset: reset)
                default:
                    continue
                }
                tl.actions.append(
                    PlannedAction(
                        kind: kind, sessions: range, at: now, offset: offset, line: line, keywordRange: a.keywordRange))
            }
        }
        for p in f.packets where !usedPackets.contains(p.id) && !d.hasErrors {
            d.warning("packet '\(p.id)' is never sent", at: f.packetTokens[p.id]!.range)
        }
        return tl
    }

    /// An action's `start:end` range, end excluded: it must not be empty or backwards, and it
    /// must end within the created sessions when their count is known.
    private func sessionRange(_ rs: RangeSyntax, _ k: Keyword, _ count: Int?, _ d: inout DiagnosticBag) -> Range<Int>? {
        guard let lo = integer(rs.lower, "the range start", &d), let hi = integer(rs.upper, "the range end", &d)
        else { return nil }
        if lo == hi {
            d.error(
                "range \(lo):\(hi) is empty; ranges are start:end with the end excluded, so write \(lo):\(lo + 1) for one session",
                at: rs.range)
            return nil
        }
        if lo > hi {
            d.error("range \(lo):\(hi) is backwards; the start must be less than the end", at: rs.range)
            return nil
        }
        if let count, hi > count {
            d.error(
                "range \(lo):\(hi) goes past the \(count) created sessions; the end can be at most \(count)",
                at: rs.range)
            return nil
        }
        return lo..<hi
    }

    /// Checks a SEND's packet id, COPIES (at least 1) and its COUNTER and TIMESTAMP patches:
    /// each patches 1 to 8 bytes inside the packet, with an exact-case byte order; COUNTER's
    /// step is at least 1, TIMESTAMP's unit one of ``TimeUnit``; the two must not overlap.
    ///
    /// - Returns: The SEND, or nil when any part of it is invalid (each problem is reported).
    private func checkSend(
        _ a: ActionSyntax, _ range: Range<Int>, _ line: Int, _ f: Fields,
        _ d: inout DiagnosticBag
    ) -> SendSpec? {
        guard let pt = a.packet, case .identifier(let id) = pt.kind else { return nil }
        let packetIndex = f.packets.firstIndex { $0.id == id }
        if packetIndex == nil {
            if f.packetTokens[id] == nil {
                var message = "packet '\(id)' is not defined in PACKETS"
                let ids = f.packetTokens.keys.sorted()
                if let s = Suggest.closest(to: id, in: ids) ?? ids.first(where: { $0.lowercased() == id.lowercased() })
                {
                    message += "; did you mean '\(s)'?"
                } else if !ids.isEmpty {
                    message += "; defined: " + ids.joined(separator: ", ")
                }
                d.error(message, at: pt.range)
            }
            // A defined packet whose file failed is already reported at its path.
        }
        var copies: Int?
        if let t = a.copies, let n = integer(t, "COPIES", &d) {
            if n == 0 { d.error("COPIES must be at least 1", at: t.range) } else { copies = n }
        }
        let size = packetIndex.map { f.packets[$0].bytes.count }
        func bytes(_ p: PatchSyntax, _ name: String) -> (Int, Int)? {
            guard let s = integer(p.start, "the \(name) start byte", &d),
                let l = integer(p.length, "the \(name) length", &d)
            else { return nil }
            if l == 0 || l > 8 {
                d.error("the \(name) length must be 1 to 8 bytes, got \(l)", at: p.length.range)
                return nil
            }
            if let size, s + l > size {
                d.error(
                    "\(name) bytes \(s)..<\(s + l) go past the end of packet '\(id)' (\(size) bytes)", at: p.bytesRange)
                return nil
            }
            return (s, l)
        }
        var counter: CounterPatch?
        if let p = a.counter {
            let b = bytes(p, "COUNTER")
            let order = quoted(p.endian, "the COUNTER byte order", ["big", "little"], &d)
            var step: UInt64?
            if let s = valueText(p.parameter), let v = UInt64(s) {
                if v == 0 {
                    d.error(
                        "the COUNTER step must be at least 1, or every copy would carry the same value",
                        at: p.parameter.range)
                } else {
                    step = v
                }
            } else {
                d.error(
                    "the COUNTER step must be a whole number, got \(p.parameter.kind.spelling)", at: p.parameter.range)
            }
            if let b, let order, let step {
                counter = CounterPatch(offset: b.0, length: b.1, order: ByteOrder(rawValue: order)!, step: step)
            }
        }
        var timestamp: TimestampPatch?
        if let p = a.timestamp {
            let b = bytes(p, "TIMESTAMP")
            let order = quoted(p.endian, "the TIMESTAMP byte order", ["big", "little"], &d)
            let unit = quoted(p.parameter, "the TIMESTAMP unit", TimeUnit.allCases.map(\.rawValue), &d)
            if let b, let order, let unit {
                timestamp = TimestampPatch(
                    offset: b.0, length: b.1, order: ByteOrder(rawValue: order)!,
                    unit: TimeUnit(rawValue: unit)!)
            }
        }
        if let c = counter, let t = timestamp, c.offset < t.offset + t.length, t.offset < c.offset + c.length {
            d.error(
                "COUNTER bytes \(c.offset)..<\(c.offset + c.length) overlap TIMESTAMP bytes \(t.offset)..<\(t.offset + t.length); they must not share bytes",
                at: a.timestamp!.bytesRange)
            return nil
        }
        guard let packetIndex, let copies, (a.counter == nil) == (counter == nil),
            (a.timestamp == nil) == (timestamp == nil)
        else { return nil }
        return SendSpec(
            packet: packetIndex, sessions: range, copies: copies, counter: counter, timestamp: timestamp,
            line: line)
    }
}

extension Token.Kind {
    /// The literal text of a value token (for echoing ranges in messages).
    var spellingValue: String {
        if case .value(let s) = self { return s }
        return spelling
    }
}
