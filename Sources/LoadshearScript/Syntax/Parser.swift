/// A recursive-descent parser over the token list. On a syntax error it reports, skips to
/// the start of the next line's statement and goes on, so independent errors all surface.
package struct Parser {
    /// Tokens come from the lexer one at a time: the parser only ever looks at the current
    /// token and the one before, so a script of millions of actions is never held as tokens.
    private var lexer: Lexer
    /// The caller's diagnostics, carried through the parse and handed back by
    /// ``parse(_:diagnostics:)``.
    private var bag: DiagnosticBag
    /// The token being looked at: `.endOfFile` once the input, or the error budget, runs out.
    private var current: Token
    /// The last token consumed: a missing token is reported just after it when `current` is
    /// on the next line.
    private var previous: Token?

    /// A parser at the start of `file`, with the first token already read.
    private init(file: SourceFile, diagnostics: DiagnosticBag) {
        lexer = Lexer(file)
        bag = diagnostics
        current = Token(kind: .endOfFile, range: SourceRange(start: 0, end: 0), startsLine: true)
        current = nextToken()
    }

    /// Lexes and parses a script. Syntax errors go into `diagnostics`; the tree holds
    /// whatever could be understood. Once the diagnostics are full, the rest of the script
    /// is not read: it could only add errors nobody would be shown.
    package static func parse(_ file: SourceFile, diagnostics: inout DiagnosticBag) -> ScriptSyntax {
        var parser = Parser(file: file, diagnostics: diagnostics)
        let script = parser.parseScript()
        diagnostics = parser.bag
        return script
    }

    // MARK: cursor

    /// The lexer's next token; once the diagnostics are full, an end of file instead, and the
    /// bag notes that checking stopped.
    private mutating func nextToken() -> Token {
        if bag.isFull {
            bag.stop()
            return Token(
                kind: .endOfFile, range: SourceRange(start: current.range.end, end: current.range.end), startsLine: true
            )
        }
        return lexer.next(&bag)
    }

    /// True once `current` is the end of the file (the real one, or one forced by a full bag).
    private var atEnd: Bool { current.kind == .endOfFile }

    /// Consumes the current token and returns it. At the end of the file nothing moves.
    @discardableResult
    private mutating func advance() -> Token {
        let t = current
        if t.kind != .endOfFile {
            previous = t
            current = nextToken()
        }
        return t
    }

    private func isKeyword(_ k: Keyword) -> Bool { current.kind == .keyword(k) }

    /// True when the current statement cannot go on: the token starts another statement (a
    /// SETTINGS field or an action keyword, whatever line it is on), closes the block, or the
    /// file ended. Line breaks are otherwise whitespace, as in the original: a SEND may go on
    /// over several lines and two fields may share one. One exception keeps the diagnostics
    /// good: a name at the start of a line begins a statement (it can only be an unknown
    /// field or action), so the next statement is not swallowed by the last one's errors.
    private var atStatementEnd: Bool {
        switch current.kind {
        case .rightBrace, .endOfFile: return true
        case .keyword(let k): return Self.startsStatement(k)
        case .identifier(let name): return current.startsLine && !Self.paceWords.contains(name)
        default: return false
        }
    }

    /// Keywords that begin a statement: SETTINGS, ORCHESTRATOR, the SETTINGS fields and the
    /// actions — not the modifiers (OFFSET, COPIES, COUNTER, TIMESTAMP).
    private static func startsStatement(_ k: Keyword) -> Bool {
        k == .SETTINGS || k == .ORCHESTRATOR || k == .EXPECT || Keyword.settingsFields.contains(k)
            || Keyword.actions.contains(k)
    }

    /// PACE's ramp words: plain names, not keywords, so no original script's packet id
    /// can clash with them; they may go on the next line like any modifier.
    private static let paceWords: Set<String> = ["TO", "OVER"]

    private var atBlockKeyword: Bool { isKeyword(.SETTINGS) || isKeyword(.ORCHESTRATOR) || isKeyword(.EXPECT) }

    /// Where to point when something is missing: at the current token if it is on the same
    /// line, else just past the previous token (so the caret stays on the line at fault).
    private var missingRange: SourceRange {
        if current.startsLine || atEnd, let p = previous {
            return SourceRange(start: p.range.end, end: p.range.end + 1)
        }
        return current.range
    }

    /// What to call the current token in "expected …, found …": "end of line" when it starts
    /// the next line.
    private func found() -> String {
        current.startsLine && previous != nil ? "end of line" : current.kind.spelling
    }

    /// Skips the rest of the statement: everything up to the next line or the block's end.
    private mutating func skipStatement() {
        while !atStatementEnd { advance() }
    }

    /// Consumes a token of `kind`; otherwise reports "expected `what`" where it is missing
    /// and returns nil, consuming nothing.
    private mutating func expect(_ kind: Token.Kind, _ what: String) -> Token? {
        if current.kind == kind { return advance() }
        bag.error("expected \(what), found \(found())", at: missingRange)
        return nil
    }

    // MARK: blocks

    /// Parses blocks until the end of the file. Anything between blocks is reported once and
    /// skipped up to the next SETTINGS or ORCHESTRATOR.
    private mutating func parseScript() -> ScriptSyntax {
        var script = ScriptSyntax()
        while !atEnd {
            switch current.kind {
            case .keyword(.SETTINGS):
                if let s = parseSettings() { script.settings.append(s) }
            case .keyword(.ORCHESTRATOR):
                if let o = parseOrchestrator() { script.orchestrators.append(o) }
            case .keyword(.EXPECT):
                if let e = parseExpect() { script.expects.append(e) }
            default:
                bag.error(
                    "expected a SETTINGS, ORCHESTRATOR or EXPECT block, found \(current.kind.spelling)",
                    at: current.range)
                advance()
                while !atEnd, !atBlockKeyword { advance() }
            }
        }
        return script
    }

    /// Parses `KEYWORD name {`; returns the name and its range.
    /// The third value is the range of the opening brace. Nil when the brace is missing; the
    /// parser has then skipped to the next block.
    private mutating func parseBlockHeader() -> (String, SourceRange, SourceRange)? {
        let kw = advance()
        let blockName = kw.kind == .keyword(.SETTINGS) ? "SETTINGS" : "ORCHESTRATOR"
        var name = ""
        var nameRange = kw.range
        switch current.kind {
        case .identifier(let n):
            name = n
            nameRange = advance().range
        case .keyword(let k) where !Self.startsStatement(k):
            bag.error(
                "\(k.rawValue) is a keyword and cannot name a \(blockName) block; choose another name",
                at: current.range)
            name = k.rawValue
            nameRange = advance().range
        default:
            bag.error("expected a name after \(blockName), found \(found())", at: missingRange)
        }
        guard current.kind == .leftBrace else {
            bag.error("expected '{' to open the \(blockName) block, found \(found())", at: missingRange)
            // Without a brace the block cannot be delimited: skip to the next block.
            while !atEnd, !atBlockKeyword { advance() }
            return nil
        }
        let open = advance().range
        return (name, nameRange, open)
    }

    /// Consumes the block's closing brace, or reports it missing.
    private mutating func closeBlock(_ open: SourceRange, _ what: String) {
        if current.kind == .rightBrace {
            advance()
        } else {
            bag.error("missing '}' to close the \(what) block opened here", at: open)
        }
    }

    /// True where a block's statements end: at its closing brace, the end of the file, or the
    /// next block's keyword (its '}' is missing then).
    private func blockEnds() -> Bool {
        current.kind == .rightBrace || atEnd || atBlockKeyword
    }

    /// (ext) `EXPECT [name] { metric op value … }`, after ORCHESTRATOR.
    private mutating func parseExpect() -> ExpectSyntax? {
        let kw = advance()
        if case .identifier = current.kind, !current.startsLine { advance() }  // an optional name
        guard current.kind == .leftBrace else {
            bag.error("expected '{' to open the EXPECT block, found \(found())", at: missingRange)
            while !atEnd, !atBlockKeyword { advance() }
            return nil
        }
        let open = advance().range
        var block = ExpectSyntax(keywordRange: kw.range)
        while !blockEnds() {
            let metric = current
            guard case .identifier = metric.kind else {
                bag.error(
                    "expected a threshold such as response.p99 < 20ms, found \(metric.kind.spelling)", at: metric.range)
                advance()
                while !blockEnds(), !current.startsLine { advance() }
                continue
            }
            advance()
            let op = current
            switch op.kind {
            case .comparison, .equals: advance()
            default:
                bag.error(
                    "expected a comparison (<, <=, >, >= or =) after \(file(metric)), found \(found())",
                    at: missingRange)
                while !blockEnds(), !current.startsLine { advance() }
                continue
            }
            guard let value = expectValue("a value after \(file(op)) (such as 20ms, 0.1%, 9000/s or 0)") else {
                while !blockEnds(), !current.startsLine { advance() }
                continue
            }
            block.items.append(ExpectationSyntax(metric: metric, op: op, value: value))
            if !blockEnds(), !current.startsLine {
                bag.error("unexpected \(current.kind.spelling); expected one threshold per line", at: current.range)
                while !blockEnds(), !current.startsLine { advance() }
            }
        }
        closeBlock(open, "EXPECT")
        return block
    }

    /// How a token reads in a message: its text.
    private func file(_ t: Token) -> String {
        switch t.kind {
        case .identifier(let s), .value(let s), .comparison(let s): "'\(s)'"
        default: t.kind.spelling
        }
    }

    /// Parses a `SETTINGS name { … }` block field by field; nil when it has no '{'.
    private mutating func parseSettings() -> SettingsSyntax? {
        let kwRange = current.range
        guard let (name, nameRange, open) = parseBlockHeader() else { return nil }
        var block = SettingsSyntax(keywordRange: kwRange, name: name, nameRange: nameRange)
        while !blockEnds() {
            if let f = parseField() { block.fields.append(f) }
            skipTrailing()
        }
        closeBlock(open, "SETTINGS")
        return block
    }

    /// Parses an `ORCHESTRATOR name { … }` block action by action; nil when it has no '{'.
    private mutating func parseOrchestrator() -> OrchestratorSyntax? {
        let kwRange = current.range
        guard let (name, nameRange, open) = parseBlockHeader() else { return nil }
        var block = OrchestratorSyntax(keywordRange: kwRange, name: name, nameRange: nameRange)
        while !blockEnds() {
            if let a = parseAction() { block.actions.append(a) }
            skipTrailing()
        }
        closeBlock(open, "ORCHESTRATOR")
        return block
    }

    /// After a statement: what cannot go on with it is an error (reported once), unless it
    /// starts a line — then it is the next statement's to explain.
    private mutating func skipTrailing() {
        if !atStatementEnd, !current.startsLine {
            bag.error("unexpected \(current.kind.spelling); expected the next field, action or '}'", at: current.range)
            skipStatement()
        }
        // A stray token that opens a line but cannot start a statement is handled by the
        // statement parsers themselves.
    }

    // MARK: SETTINGS fields

    /// Parses one SETTINGS field: `KEY = value`, `ENDPOINTS { … }` or `PACKETS { … }` (the
    /// '=' optional for both), or `HEADER_LENGTH = offset:size "order"`. Anything else — an
    /// unsupported (ext) keyword, an action, an unknown name — is reported with a suggestion
    /// where one is close, and its statement skipped. Nil then, and for a malformed field.
    private mutating func parseField() -> FieldSyntax? {
        let keyToken = current
        switch keyToken.kind {
        case .keyword(let k) where Keyword.settingsFields.contains(k):
            advance()
            switch k {
            case .ENDPOINTS, .SOURCES:
                _ = eatOptionalEquals()
                guard let (items, r) = parseBraceList(what: k == .SOURCES ? "source address" : "endpoint") else {
                    return nil
                }
                return FieldSyntax(key: k, keyRange: keyToken.range, value: .list(items, r))
            case .PACKETS:
                _ = eatOptionalEquals()
                guard let (entries, r) = parsePacketList() else { return nil }
                return FieldSyntax(key: k, keyRange: keyToken.range, value: .packets(entries, r))
            case .TLS:
                _ = eatOptionalEquals()
                guard let (fields, r) = parseSubFieldBlock(of: "TLS") else { return nil }
                return FieldSyntax(key: k, keyRange: keyToken.range, value: .block(fields, r))
            case .HEADER_LENGTH:
                guard expect(.equals, "'=' after HEADER_LENGTH") != nil else {
                    skipStatement()
                    return nil
                }
                return parseByteField(
                    k, keyToken, offset: "the header offset of the body length (e.g. 4:4 \"big\")",
                    what: "the body length")
            case .SEQUENCE:
                guard expect(.equals, "'=' after SEQUENCE") != nil else {
                    skipStatement()
                    return nil
                }
                return parseByteField(
                    k, keyToken, offset: "the offset of the sequence number in a message (e.g. 0:4 \"big\")",
                    what: "the sequence number")
            case .RESPONSE:
                guard expect(.equals, "'=' after RESPONSE") != nil else {
                    skipStatement()
                    return nil
                }
                if case .string = current.kind {
                    return FieldSyntax(key: k, keyRange: keyToken.range, value: .scalar(advance()))
                }
                return parseByteField(
                    k, keyToken, offset: "the offset of the request id in a reply (e.g. 4:4 \"big\") or \"in-order\"",
                    what: "the request id")
            default:
                guard expect(.equals, "'=' after \(k.rawValue)") != nil else {
                    skipStatement()
                    return nil
                }
                switch current.kind {
                case .value, .string:
                    return FieldSyntax(key: k, keyRange: keyToken.range, value: .scalar(advance()))
                case .identifier where !current.startsLine:
                    return FieldSyntax(key: k, keyRange: keyToken.range, value: .scalar(advance()))
                default:
                    bag.error("expected a value for \(k.rawValue), found \(found())", at: missingRange)
                    skipStatement()
                    return nil
                }
            }
        case .keyword(let k) where !k.isSupported:
            bag.error(
                "\(k.rawValue) is not supported yet; it is a planned (ext) extension of the language",
                at: keyToken.range)
        case .keyword(let k) where Keyword.actions.contains(k) || k == .OFFSET:
            bag.error(
                "\(k.rawValue) is an ORCHESTRATOR action; SETTINGS holds only fields such as PORT or ENDPOINTS",
                at: keyToken.range)
        case .identifier(let name), .value(let name):
            let known = Keyword.settingsFields.map(\.rawValue) + ["RATE", "SOURCES", "EXPECT"]
            var message = "unknown SETTINGS field '\(name)'"
            if let s = Suggest.closest(to: name, in: known) {
                message += "; did you mean \(s)?"
            } else {
                message += "; expected one of " + Keyword.settingsFields.map(\.rawValue).joined(separator: ", ")
            }
            bag.error(message, at: keyToken.range)
        default:
            bag.error(
                "expected a SETTINGS field such as PORT = 55555, found \(keyToken.kind.spelling)",
                at: keyToken.range)
        }
        advance()
        skipStatement()
        return nil
    }

    /// Consumes an '=' if there is one; true when it did.
    /// `offset:size "endian"` after `=` (HEADER_LENGTH, RESPONSE, SEQUENCE): bytes of a header or frame
    /// holding an unsigned number; `offset` says what the first value is, `what` the number.
    private mutating func parseByteField(
        _ k: Keyword, _ keyToken: Token, offset: String, what: String
    ) -> FieldSyntax? {
        guard let off = expectValue(offset),
            expect(.colon, "':' between the offset and the size of \(what)") != nil,
            let size = expectValue("the size in bytes of \(what) (1 to 8)"),
            let endian = expectString("the byte order, \"big\" or \"little\"")
        else {
            skipStatement()
            return nil
        }
        return FieldSyntax(
            key: k, keyRange: keyToken.range, value: .headerLength(offset: off, size: size, endian: endian))
    }

    private mutating func eatOptionalEquals() -> Bool {
        if current.kind == .equals {
            advance()
            return true
        }
        return false
    }

    /// Consumes a value or a quoted string; otherwise reports "expected `what`" and returns nil.
    private mutating func expectValue(_ what: String) -> Token? {
        // A quoted value is a value too (`CREATE "10"`, `OFFSET "500ms"`, as in the original).
        switch current.kind {
        case .value, .string: return advance()
        default: break
        }
        bag.error("expected \(what), found \(found())", at: missingRange)
        return nil
    }

    /// Consumes a quoted string; otherwise reports "expected `what` in quotes" and returns nil.
    private mutating func expectString(_ what: String) -> Token? {
        if case .string = current.kind { return advance() }
        bag.error("expected \(what) in quotes, found \(found())", at: missingRange)
        return nil
    }

    /// `{ item, item, … }`; commas between items are optional, as are line breaks.
    private mutating func parseBraceList(what: String) -> ([Token], SourceRange)? {
        guard current.kind == .leftBrace else {
            bag.error("expected '{' to open the list of \(what)s, found \(found())", at: missingRange)
            skipStatement()
            return nil
        }
        let open = advance().range
        var items: [Token] = []
        while true {
            switch current.kind {
            case .rightBrace:
                return (items, open.union(advance().range))
            case .comma:
                advance()
            case .value, .string:
                items.append(advance())
            case .identifier(let s):
                bag.error(
                    "expected an \(what) as a quoted name or an IP address, found '\(s)'; write \"\(s)\"",
                    at: current.range)
                advance()
            case .endOfFile, .keyword:
                bag.error("missing '}' to close the list of \(what)s", at: open)
                return (items, open)
            default:
                bag.error("expected an \(what) or '}', found \(current.kind.spelling)", at: current.range)
                advance()
            }
        }
    }

    /// (ext) `{ NAME = value  NAME { "a", "b" } … }` (TLS): sub-fields, each `=` a value or a
    /// braced list. Which names exist is the checker's business.
    private mutating func parseSubFieldBlock(of owner: String) -> ([SubFieldSyntax], SourceRange)? {
        guard current.kind == .leftBrace else {
            bag.error("expected '{' to open the \(owner) block, found \(found())", at: missingRange)
            skipStatement()
            return nil
        }
        let open = advance().range
        var fields: [SubFieldSyntax] = []
        while true {
            switch current.kind {
            case .rightBrace:
                return (fields, open.union(advance().range))
            case .identifier, .value, .keyword:
                if case .keyword(let k) = current.kind, Keyword.settingsFields.contains(k) || k == .ORCHESTRATOR {
                    bag.error("missing '}' to close the \(owner) block", at: open)
                    return (fields, open)
                }
                let name = advance()
                var field = SubFieldSyntax(name: name)
                if current.kind == .leftBrace {
                    guard let list = parseBraceList(what: "\(owner) value") else { return (fields, open) }
                    field.list = list
                } else if expect(.equals, "'=' or '{' after \(field.key)") != nil {
                    switch current.kind {
                    case .value, .string, .identifier:
                        field.value = advance()
                    default:
                        bag.error("expected a value for \(field.key), found \(found())", at: missingRange)
                    }
                }
                fields.append(field)
            case .comma:
                advance()
            case .endOfFile:
                bag.error("missing '}' to close the \(owner) block", at: open)
                return (fields, open)
            default:
                bag.error(
                    "expected a \(owner) setting such as SNI = \"name\" or '}', found \(current.kind.spelling)",
                    at: current.range)
                advance()
            }
        }
    }

    /// `{ id : "path", … }`.
    private mutating func parsePacketList() -> ([PacketEntrySyntax], SourceRange)? {
        guard current.kind == .leftBrace else {
            bag.error("expected '{' to open the list of packets, found \(found())", at: missingRange)
            skipStatement()
            return nil
        }
        let open = advance().range
        var entries: [PacketEntrySyntax] = []
        while true {
            switch current.kind {
            case .rightBrace:
                return (entries, open.union(advance().range))
            case .comma:
                advance()
            case .endOfFile:
                bag.error("missing '}' to close the list of packets", at: open)
                return (entries, open)
            case .keyword where blockKeyword:
                bag.error("missing '}' to close the list of packets", at: open)
                return (entries, open)
            case .identifier, .value, .keyword:
                let id = advance()
                if case .identifier = id.kind {
                } else {
                    bag.error("packet ids are names that start with a letter, found \(id.kind.spelling)", at: id.range)
                }
                guard current.kind == .colon else {
                    bag.error("expected ':' and a quoted file path after packet id, found \(found())", at: missingRange)
                    continue
                }
                advance()
                guard case .string = current.kind else {
                    bag.error("expected the packet's file path in quotes, found \(found())", at: missingRange)
                    if current.kind != .rightBrace { advance() }
                    continue
                }
                entries.append(PacketEntrySyntax(id: id, path: advance()))
            default:
                bag.error(
                    "expected a packet entry such as p1 : \"packet.bin\", found \(current.kind.spelling)",
                    at: current.range)
                advance()
            }
        }
    }

    /// True when the current token is a keyword that starts a statement: a PACKETS list whose
    /// '}' is missing ends there.
    private var blockKeyword: Bool {
        atBlockKeyword || Keyword.settingsFields.contains(where: isKeyword)
            || Keyword.actions.contains(where: isKeyword)
    }

    // MARK: ORCHESTRATOR actions

    /// Parses one ORCHESTRATOR action: CREATE and its count, or another action and its
    /// `start:end` range (then, for SEND, a packet id), followed by modifiers in any order —
    /// OFFSET for every action; COPIES, COUNTER and TIMESTAMP for SEND. Nil when the action
    /// itself could not be read; after a malformed modifier, what was parsed so far.
    private mutating func parseAction() -> ActionSyntax? {
        let kwToken = current
        guard case .keyword(let k) = kwToken.kind, Keyword.actions.contains(k) else {
            switch kwToken.kind {
            case .keyword(let k) where !k.isSupported:
                bag.error(
                    "\(k.rawValue) is not supported yet; it is a planned (ext) extension of the language",
                    at: kwToken.range)
            case .keyword(let k) where Keyword.settingsFields.contains(k):
                bag.error(
                    "\(k.rawValue) is a SETTINGS field; ORCHESTRATOR holds only actions such as CONNECT 0:10",
                    at: kwToken.range)
            case .identifier(let name):
                var message = "unknown action '\(name)'"
                let known = Keyword.actions.map(\.rawValue) + ["RATE", "RECONNECT"]
                if let s = Suggest.closest(to: name, in: known) {
                    message += "; did you mean \(s)?"
                } else {
                    message += "; expected one of " + Keyword.actions.map(\.rawValue).joined(separator: ", ")
                }
                bag.error(message, at: kwToken.range)
            default:
                bag.error(
                    "expected an action (CREATE, CONNECT, SEND, FLOOD, PACE, DRAIN or DISCONNECT), found \(kwToken.kind.spelling)",
                    at: kwToken.range)
            }
            advance()
            skipStatement()
            return nil
        }
        advance()
        var action = ActionSyntax(keyword: k, keywordRange: kwToken.range)
        if k == .CREATE {
            guard let n = expectValue("the number of sessions to create after CREATE") else {
                skipStatement()
                return nil
            }
            action.count = n
        } else {
            guard let r = parseRange("the sessions for \(k.rawValue) as start:end") else {
                skipStatement()
                return nil
            }
            action.sessions = r
        }
        if k == .CHURN {
            guard current.kind == .identifier("EVERY") else {
                bag.error(
                    "expected EVERY and a period after the CHURN range (CHURN a:b EVERY 1s), found \(found())",
                    at: missingRange)
                skipStatement()
                return nil
            }
            advance()
            guard let period = expectValue("the period after EVERY, such as 1s") else {
                skipStatement()
                return nil
            }
            action.count = period
        }
        if k == .DISCONNECT, case .string = current.kind {
            action.packet = advance()  // (ext) how to close: "reset"
        }
        if k == .SEND {
            guard case .identifier = current.kind else {
                bag.error("expected a packet id from PACKETS after the SEND range, found \(found())", at: missingRange)
                skipStatement()
                return nil
            }
            action.packet = advance()
        }
        if k == .PACE {
            guard let rate = expectValue("a rate per session after the PACE range, such as 50/s") else {
                skipStatement()
                return nil
            }
            var target: Token?
            var over: Token?
            var overRange: SourceRange?
            if current.kind == .identifier("TO") {
                advance()
                guard let t = expectValue("the rate to ramp to after TO, such as 200/s") else {
                    skipStatement()
                    return nil
                }
                target = t
                guard current.kind == .identifier("OVER") else {
                    bag.error(
                        "expected OVER and the ramp's duration after TO \(file(t)), found \(found())", at: missingRange)
                    skipStatement()
                    return nil
                }
                overRange = advance().range
                guard let d = expectValue("the ramp's duration after OVER, such as 60s") else {
                    skipStatement()
                    return nil
                }
                over = d
            } else if current.kind == .identifier("OVER") {
                bag.error("OVER needs TO first: PACE a:b 10/s TO 200/s OVER 60s", at: current.range)
                skipStatement()
                return nil
            }
            action.pace = PaceSyntax(rate: rate, target: target, over: over, overKeywordRange: overRange)
        }
        // Modifiers, in any order, until the next statement (line breaks do not matter).
        while !atStatementEnd {
            let m = current
            switch m.kind {
            case .keyword(.OFFSET):
                advance()
                if action.offset != nil {
                    bag.error("OFFSET is given twice for this action", at: m.range)
                }
                guard let v = expectValue("a duration after OFFSET, such as 250ms") else {
                    skipStatement()
                    return action
                }
                action.offset = v
                action.offsetKeywordRange = m.range
            case .keyword(.COPIES) where k == .SEND:
                advance()
                if action.copies != nil { bag.error("COPIES is given twice for this SEND", at: m.range) }
                guard let v = expectValue("the number of copies after COPIES") else {
                    skipStatement()
                    return action
                }
                action.copies = v
            case .keyword(.COUNTER) where k == .SEND, .keyword(.TIMESTAMP) where k == .SEND:
                let isCounter = m.kind == .keyword(.COUNTER)
                advance()
                let name = isCounter ? "COUNTER" : "TIMESTAMP"
                if (isCounter ? action.counter : action.timestamp) != nil {
                    bag.error("a SEND takes at most one \(name)", at: m.range)
                }
                guard let p = parsePatch(m.range, isCounter: isCounter) else {
                    skipStatement()
                    return action
                }
                if isCounter { action.counter = p } else { action.timestamp = p }
            case .keyword(let x) where !x.isSupported:
                bag.error(
                    "\(x.rawValue) is not supported yet; it is a planned (ext) extension of the language",
                    at: m.range)
                skipStatement()
            default:
                // Something that cannot go on with this action at the start of a line: the
                // next statement (a stray value, say) explains itself.
                if m.startsLine { return finish(action) }
                let allowed = k == .SEND ? "COPIES, COUNTER, TIMESTAMP, OFFSET" : "OFFSET"
                bag.error(
                    "unexpected \(m.kind.spelling) after \(k.rawValue); expected \(allowed) or the next action",
                    at: m.range)
                skipStatement()
            }
        }
        return finish(action)
    }

    /// Reports a SEND without COPIES (at its packet id), then returns the action unchanged.
    private mutating func finish(_ action: ActionSyntax) -> ActionSyntax {
        if action.keyword == .SEND, action.copies == nil {
            bag.error(
                "SEND needs COPIES <n>: how many payloads each session may send",
                at: action.packet?.range ?? action.keywordRange)
        }
        return action
    }

    /// Parses `start:end`; nil, with the problem reported, when either part or the ':' is
    /// missing.
    private mutating func parseRange(_ what: String) -> RangeSyntax? {
        guard let lo = expectValue(what) else { return nil }
        guard current.kind == .colon else {
            bag.error(
                "expected ':' and the end of the range (ranges are start:end, end excluded), found \(found())",
                at: missingRange)
            return nil
        }
        advance()
        guard let hi = expectValue("the end of the range after ':'") else { return nil }
        return RangeSyntax(lower: lo, upper: hi)
    }

    /// Parses the rest of `COUNTER start:length "order":step` or `TIMESTAMP start:length
    /// "order":"unit"`, whose keyword (at `kw`) is already consumed.
    private mutating func parsePatch(_ kw: SourceRange, isCounter: Bool) -> PatchSyntax? {
        let name = isCounter ? "COUNTER" : "TIMESTAMP"
        let example = isCounter ? "COUNTER 0:8 \"little\":1" : "TIMESTAMP 0:8 \"little\":\"seconds\""
        guard let r = parseRange("the patched bytes as start:length (e.g. \(example))"),
            let endian = expectString("the byte order of \(name), \"big\" or \"little\"")
        else { return nil }
        guard current.kind == .colon else {
            let what = isCounter ? "':' and the counter step" : "':' and the time unit"
            bag.error("expected \(what) after the byte order (e.g. \(example)), found \(found())", at: missingRange)
            return nil
        }
        advance()
        let param: Token?
        if isCounter {
            param = expectValue("the counter step after ':'")
        } else {
            param = expectString("the time unit (\"seconds\", \"milliseconds\", \"microseconds\" or \"nanoseconds\")")
        }
        guard let param else { return nil }
        return PatchSyntax(keywordRange: kw, start: r.lower, length: r.upper, endian: endian, parameter: param)
    }
}

/// "Did you mean" suggestions by edit distance.
enum Suggest {
    /// The candidate nearest to `word` by edit distance, if it is within
    /// `max(2, word.count / 3)` edits. `word` is upper-cased first and the candidates are not,
    /// so it suits lists of upper-case keywords.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let w = Array(word.uppercased().utf8)
        var best: (String, Int)?
        for c in candidates {
            // Case-insensitive on both sides: keywords are upper case, packet ids and metric
            // names usually lower case.
            let dist = distance(w, Array(c.uppercased().utf8))
            if best == nil || dist < best!.1 { best = (c, dist) }
        }
        guard let (c, dist) = best else { return nil }
        return dist <= max(2, w.count / 3) ? c : nil
    }

    /// The Levenshtein distance between two byte strings: insertions, deletions and
    /// substitutions cost one each.
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
