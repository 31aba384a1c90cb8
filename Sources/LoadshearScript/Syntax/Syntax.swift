/// The syntax tree: what the script says, with source ranges, before any checking of
/// meaning. `Checker` (through `PlanBuilder`) turns it into a `Plan`.
package struct ScriptSyntax: Sendable {
    /// Every SETTINGS block in order; the checker uses the first and reports the others.
    package var settings: [SettingsSyntax] = []
    /// Every ORCHESTRATOR block in order; the checker uses the first and reports the others.
    package var orchestrators: [OrchestratorSyntax] = []
    /// (ext) `EXPECT { … }` blocks (a script has at most one).
    package var expects: [ExpectSyntax] = []
}

/// (ext) An `EXPECT { … }` block: thresholds evaluated at the end of the run.
package struct ExpectSyntax: Sendable {
    package var keywordRange: SourceRange
    package var items: [ExpectationSyntax] = []
}

/// One threshold: `response.p99 < 20ms`.
package struct ExpectationSyntax: Sendable {
    /// The metric name (an identifier such as `response.p99` or `timeouts`).
    package var metric: Token
    /// `.comparison` or `.equals`.
    package var op: Token
    package var value: Token
    package var range: SourceRange { metric.range.union(value.range) }
}

/// A `SETTINGS name { … }` block.
package struct SettingsSyntax: Sendable {
    /// The SETTINGS keyword: where "a script has one SETTINGS block" points.
    package var keywordRange: SourceRange
    /// The block's name; the ORCHESTRATOR must give the same one.
    package var name: String
    package var nameRange: SourceRange
    /// Fields in script order, repeats included (the checker reports them).
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
        case .list(_, let r), .packets(_, let r), .block(_, let r): r
        case .headerLength(let o, _, let e): o.range.union(e.range)
        }
    }
}

/// The value of a SETTINGS field, in the shape the field's syntax takes.
package enum FieldValueSyntax: Sendable {
    /// `= 25`, `= "TCP"`.
    case scalar(Token)
    /// `{ "localhost", 127.0.0.1 }`; the range covers the braces.
    case list([Token], SourceRange)
    /// `{ p1 : "a.bin", p2 : "b.bin" }`.
    case packets([PacketEntrySyntax], SourceRange)
    /// `= 4:4 "big"` (HEADER_LENGTH, RESPONSE).
    case headerLength(offset: Token, size: Token, endian: Token)
    /// (ext) `{ SNI = "name" ALPN { "h2" } }` (TLS): named sub-fields; the range covers the braces.
    case block([SubFieldSyntax], SourceRange)
}

/// (ext) One `NAME = value` or `NAME { … }` inside a block field such as TLS.
package struct SubFieldSyntax: Sendable {
    /// The name as written (an identifier token).
    package var name: Token
    /// `= value`, or `{ … }` with the range of its braces.
    package var value: Token?
    package var list: ([Token], SourceRange)?

    /// The name as written.
    package var key: String {
        switch name.kind {
        case .identifier(let s), .value(let s): s
        case .keyword(let k): k.rawValue
        default: ""
        }
    }
    /// The value's range (or the list's), else the name's.
    package var valueRange: SourceRange { value?.range ?? list?.1 ?? name.range }
}

/// One `id : "path"` entry of PACKETS.
package struct PacketEntrySyntax: Sendable {
    /// The packet id: a name (anything else is reported by the parser, and kept).
    package var id: Token
    /// The quoted path, its escapes not yet decoded.
    package var path: Token
}

/// An `ORCHESTRATOR name { … }` block.
package struct OrchestratorSyntax: Sendable {
    package var keywordRange: SourceRange
    package var name: String
    package var nameRange: SourceRange
    /// Actions in script order.
    package var actions: [ActionSyntax] = []
}

/// `a:b`.
package struct RangeSyntax: Sendable {
    /// The first session, included.
    package var lower: Token
    /// The end, excluded.
    package var upper: Token
    /// From the start to the end: where range errors point.
    package var range: SourceRange { lower.range.union(upper.range) }
}

/// `COUNTER s:l "endian":step` or `TIMESTAMP s:l "endian":"unit"`.
package struct PatchSyntax: Sendable {
    package var keywordRange: SourceRange
    /// The first patched byte.
    package var start: Token
    /// How many bytes are patched.
    package var length: Token
    /// The quoted byte order, `"big"` or `"little"`.
    package var endian: Token
    /// COUNTER's step (a value) or TIMESTAMP's unit (a quoted string).
    package var parameter: Token
    /// From the keyword to the step or unit.
    package var range: SourceRange { keywordRange.union(parameter.range) }
    /// `start:length`: where problems with the patched bytes point.
    package var bytesRange: SourceRange { start.range.union(length.range) }
}

/// (ext) `PACE a:b 10/s [TO 200/s OVER 60s]`.
package final class PaceSyntax: Sendable {
    package let rate: Token
    package let target: Token?
    package let over: Token?
    package let overKeywordRange: SourceRange?

    package init(rate: Token, target: Token?, over: Token?, overKeywordRange: SourceRange?) {
        self.rate = rate
        self.target = target
        self.over = over
        self.overKeywordRange = overKeywordRange
    }
}

/// One line of the ORCHESTRATOR timeline.
package struct ActionSyntax: Sendable {
    package var keyword: Keyword
    package var keywordRange: SourceRange
    /// CREATE's session count; (ext) CHURN's period.
    package var count: Token?
    /// The session range of every other action.
    package var sessions: RangeSyntax?
    /// SEND's packet id and modifiers; (ext) DISCONNECT's close kind (`"reset"`).
    package var packet: Token?
    /// SEND's COPIES value.
    package var copies: Token?
    /// The OFFSET value, when given; without one the action starts 250ms after the previous.
    package var offset: Token?
    /// Where the OFFSET keyword is, when given.
    package var offsetKeywordRange: SourceRange?
    /// (ext) PACE's rate and ramp, out of line like the patches.
    package var pace: PaceSyntax?

    /// An action with no operands yet; the parser fills them in.
    package init(keyword: Keyword, keywordRange: SourceRange) {
        self.keyword = keyword
        self.keywordRange = keywordRange
    }

    /// COUNTER and TIMESTAMP, held out of line: most actions have neither, and a script can
    /// hold millions of actions.
    private var patches: Patches?

    /// The out-of-line storage: immutable, replaced whole when either patch is set.
    private final class Patches: Sendable {
        let counter: PatchSyntax?
        let timestamp: PatchSyntax?
        init(counter: PatchSyntax?, timestamp: PatchSyntax?) {
            self.counter = counter
            self.timestamp = timestamp
        }
    }

    /// SEND's COUNTER patch; setting it keeps the TIMESTAMP.
    package var counter: PatchSyntax? {
        get { patches?.counter }
        set { patches = newValue == nil && timestamp == nil ? nil : Patches(counter: newValue, timestamp: timestamp) }
    }

    /// SEND's TIMESTAMP patch; setting it keeps the COUNTER.
    package var timestamp: PatchSyntax? {
        get { patches?.timestamp }
        set { patches = newValue == nil && counter == nil ? nil : Patches(counter: counter, timestamp: newValue) }
    }
}
