/// The syntax tree: what the script says, with source ranges, before any checking of
/// meaning. The validator turns it into a `Plan`.
package struct ScriptSyntax: Sendable {
    package var settings: [SettingsSyntax] = []
    package var orchestrators: [OrchestratorSyntax] = []
}

/// A `SETTINGS name { … }` block.
package struct SettingsSyntax: Sendable {
    package var keywordRange: SourceRange
    package var name: String
    package var nameRange: SourceRange
    package var fields: [FieldSyntax] = []
}

/// One `KEY = value` (or `KEY { … }`) line in SETTINGS.
package struct FieldSyntax: Sendable {
    package var key: Keyword
    package var keyRange: SourceRange
    package var value: FieldValueSyntax

    /// The range covering the value, for diagnostics about the value as a whole.
    package var valueRange: SourceRange {
        switch value {
        case .scalar(let t): t.range
        case .list(_, let r), .packets(_, let r): r
        case .headerLength(let o, _, let e): o.range.union(e.range)
        }
    }
}

package enum FieldValueSyntax: Sendable {
    /// `= 25`, `= "TCP"`.
    case scalar(Token)
    /// `{ "localhost", 127.0.0.1 }`; the range covers the braces.
    case list([Token], SourceRange)
    /// `{ p1 : "a.bin", p2 : "b.bin" }`.
    case packets([PacketEntrySyntax], SourceRange)
    /// `= 4:4 "big"`.
    case headerLength(offset: Token, size: Token, endian: Token)
}

package struct PacketEntrySyntax: Sendable {
    package var id: Token
    package var path: Token
}

/// An `ORCHESTRATOR name { … }` block.
package struct OrchestratorSyntax: Sendable {
    package var keywordRange: SourceRange
    package var name: String
    package var nameRange: SourceRange
    package var actions: [ActionSyntax] = []
}

/// `a:b`.
package struct RangeSyntax: Sendable {
    package var lower: Token
    package var upper: Token
    package var range: SourceRange { lower.range.union(upper.range) }
}

/// `COUNTER s:l "endian":step` or `TIMESTAMP s:l "endian":"unit"`.
package struct PatchSyntax: Sendable {
    package var keywordRange: SourceRange
    package var start: Token
    package var length: Token
    package var endian: Token
    package var parameter: Token
    package var range: SourceRange { keywordRange.union(parameter.range) }
    package var bytesRange: SourceRange { start.range.union(length.range) }
}

/// One line of the ORCHESTRATOR timeline.
package struct ActionSyntax: Sendable {
    package var keyword: Keyword
    package var keywordRange: SourceRange
    /// CREATE's session count.
    package var count: Token?
    /// The session range of every other action.
    package var sessions: RangeSyntax?
    /// SEND's packet id and modifiers.
    package var packet: Token?
    package var copies: Token?
    package var offset: Token?
    package var offsetKeywordRange: SourceRange?

    package init(keyword: Keyword, keywordRange: SourceRange) {
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

    package var counter: PatchSyntax? {
        get { patches?.counter }
        set { patches = newValue == nil && timestamp == nil ? nil : Patches(counter: newValue, timestamp: timestamp) }
    }

    package var timestamp: PatchSyntax? {
        get { patches?.timestamp }
        set { patches = newValue == nil && counter == nil ? nil : Patches(counter: counter, timestamp: newValue) }
    }
}
