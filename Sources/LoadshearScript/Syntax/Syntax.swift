/// The syntax tree: what the script says, with source ranges, before any checking of
/// meaning. The validator turns it into a `Plan`.
public struct ScriptSyntax: Sendable {
    public var settings: [SettingsSyntax] = []
    public var orchestrators: [OrchestratorSyntax] = []
}

/// A `SETTINGS name { … }` block.
public struct SettingsSyntax: Sendable {
    public var keywordRange: SourceRange
    public var name: String
    public var nameRange: SourceRange
    public var fields: [FieldSyntax] = []
}

/// One `KEY = value` (or `KEY { … }`) line in SETTINGS.
public struct FieldSyntax: Sendable {
    public var key: Keyword
    public var keyRange: SourceRange
    public var value: FieldValueSyntax

    /// The range covering the value, for diagnostics about the value as a whole.
    public var valueRange: SourceRange {
        switch value {
        case .scalar(let t): t.range
        case .list(_, let r), .packets(_, let r): r
        case .headerLength(let o, _, let e): o.range.union(e.range)
        }
    }
}

public enum FieldValueSyntax: Sendable {
    /// `= 25`, `= "TCP"`.
    case scalar(Token)
    /// `{ "localhost", 127.0.0.1 }`; the range covers the braces.
    case list([Token], SourceRange)
    /// `{ p1 : "a.bin", p2 : "b.bin" }`.
    case packets([PacketEntrySyntax], SourceRange)
    /// `= 4:4 "big"`.
    case headerLength(offset: Token, size: Token, endian: Token)
}

public struct PacketEntrySyntax: Sendable {
    public var id: Token
    public var path: Token
}

/// An `ORCHESTRATOR name { … }` block.
public struct OrchestratorSyntax: Sendable {
    public var keywordRange: SourceRange
    public var name: String
    public var nameRange: SourceRange
    public var actions: [ActionSyntax] = []
}

/// `a:b`.
public struct RangeSyntax: Sendable {
    public var lower: Token
    public var upper: Token
    public var range: SourceRange { lower.range.union(upper.range) }
}

/// `COUNTER s:l "endian":step` or `TIMESTAMP s:l "endian":"unit"`.
public struct PatchSyntax: Sendable {
    public var keywordRange: SourceRange
    public var start: Token
    public var length: Token
    public var endian: Token
    public var parameter: Token
    public var range: SourceRange { keywordRange.union(parameter.range) }
    public var bytesRange: SourceRange { start.range.union(length.range) }
}

/// One line of the ORCHESTRATOR timeline.
public struct ActionSyntax: Sendable {
    public var keyword: Keyword
    public var keywordRange: SourceRange
    /// CREATE's session count.
    public var count: Token?
    /// The session range of every other action.
    public var sessions: RangeSyntax?
    /// SEND's packet id and modifiers.
    public var packet: Token?
    public var copies: Token?
    public var offset: Token?
    public var offsetKeywordRange: SourceRange?

    public init(keyword: Keyword, keywordRange: SourceRange) {
        self.keyword = keyword
        self.keywordRange = keywordRange
    }

    /// COUNTER and TIMESTAMP, held out of line: most actions have neither, and a script can
    /// hold millions of actions.
    private var patches: Patches?

    private final class Patches: Sendable {
        let counter: PatchSyntax?
        let timestamp: PatchSyntax?
        init(counter: PatchSyntax?, timestamp: PatchSyntax?) {
            self.counter = counter
            self.timestamp = timestamp
        }
    }

    public var counter: PatchSyntax? {
        get { patches?.counter }
        set { patches = newValue == nil && timestamp == nil ? nil : Patches(counter: newValue, timestamp: timestamp) }
    }

    public var timestamp: PatchSyntax? {
        get { patches?.timestamp }
        set { patches = newValue == nil && counter == nil ? nil : Patches(counter: counter, timestamp: newValue) }
    }
}
