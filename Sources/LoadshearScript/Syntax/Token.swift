/// A lexical token with its byte range in the script.
package struct Token: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// An ALL-CAPS word from the language (`SETTINGS`, `PORT`, `SEND`, …).
        case keyword(Keyword)
        /// A name: a SETTINGS/ORCHESTRATOR name, a packet id, or an unknown field.
        case identifier(String)
        /// A value starting with a digit: `25`, `5ms`, `1.5s`, `127.0.0.1`.
        case value(String)
        /// A double-quoted string; `raw` is the text between the quotes, escapes not yet decoded.
        case string(raw: String)
        case equals
        case colon
        case comma
        case leftBrace
        case rightBrace
        /// (ext) `<`, `<=`, `>`, `>=` in EXPECT (`=` is `.equals`).
        case comparison(String)
        /// The end of the input; the lexer returns it again on every later call.
        case endOfFile
    }

    package var kind: Kind
    /// The token's bytes in the script; a string's range includes its quotes.
    package var range: SourceRange
    /// True when a line break separates this token from the previous one; the parser
    /// uses it to recover at the start of the next statement.
    package var startsLine: Bool
}

/// Every keyword of the language. `supported == false` marks the (ext) words that are
/// reserved but not implemented yet, so their use gets a clear "not supported yet".
package enum Keyword: String, Sendable, CaseIterable {
    case SETTINGS, ORCHESTRATOR
    case SESSION, PORT, HEADERSIZE, BODYMAX, READ, REPEAT, SAMPLERATE, ENDPOINTS, SHARDS, PACKETS, HANDLER
    case HEADER_LENGTH, HANDLER_MEMORY
    case CREATE, CONNECT, SEND, COPIES, COUNTER, TIMESTAMP, FLOOD, DRAIN, DISCONNECT, OFFSET
    // (ext) paced load, response time and thresholds.
    case PACE, RESPONSE, TIMEOUT, EXPECT
    // (ext) connections at scale.
    case SOURCES, CONNECT_WINDOW, CHURN
    // (ext) TLS sessions.
    case TLS
    // (ext) sequence analysis of inbound messages.
    case SEQUENCE
    // (ext) reserved, specified in later issues.
    case RATE, RECONNECT

    /// False for the (ext) keywords that are reserved but not implemented; using one is an
    /// error that says so.
    package var isSupported: Bool {
        switch self {
        case .RATE, .RECONNECT: false
        default: true
        }
    }

    /// Keywords that may start a SETTINGS field.
    package static let settingsFields: [Keyword] = [
        .SESSION, .PORT, .HEADERSIZE, .BODYMAX, .READ, .REPEAT, .SAMPLERATE, .ENDPOINTS, .SHARDS, .PACKETS,
        .HANDLER, .HEADER_LENGTH, .HANDLER_MEMORY, .RESPONSE, .TIMEOUT, .SOURCES, .CONNECT_WINDOW, .TLS,
        .SEQUENCE,
    ]

    /// Keywords that may start an ORCHESTRATOR action.
    package static let actions: [Keyword] = [.CREATE, .CONNECT, .SEND, .FLOOD, .PACE, .CHURN, .DRAIN, .DISCONNECT]
}

extension Token.Kind {
    /// How the token is named in "expected …, found …" messages.
    package var spelling: String {
        switch self {
        case .keyword(let k): "keyword \(k.rawValue)"
        case .identifier(let s): "'\(s)'"
        case .value(let s): "'\(s)'"
        case .string(let raw): "\"\(raw)\""
        case .equals: "'='"
        case .colon: "':'"
        case .comma: "','"
        case .leftBrace: "'{'"
        case .rightBrace: "'}'"
        case .comparison(let op): "'\(op)'"
        case .endOfFile: "end of file"
        }
    }
}
