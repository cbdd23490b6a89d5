import Glibc
public import Logging

/// One JSON object a line on standard error, for log pipelines (Loki, Elasticsearch, Cloud Logging):
///
///     {"time":"2026-12-06T20:01:02.123Z","level":"warning","logger":"hms-act","message":"message dead-lettered",
///      "source":"ActService","trace_id":"4bf92f35…","metadata":{"message.reason":"…"}}
///
/// `trace_id` and `span_id` are lifted out of the metadata to the top level when a log call gives them, so a
/// pipeline can link the line to its trace. `HMS_LOG_FORMAT=json` (or `hms-act serve --log-format json`)
/// selects it; text stays the default (docs/configuration.md).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler that writes to standard error.
    public static func standardError(label: String, metadataProvider: Logger.MetadataProvider? = nil) -> Self {
        JSONLogHandler(label: label, metadataProvider: metadataProvider) { line in
            // One write(2) per line: lines of concurrent tasks never interleave (up to PIPE_BUF bytes on a
            // pipe; longer lines are written in as few calls as the kernel takes).
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    /// A handler that hands each line (with its newline) to `write`, e.g. to a test's buffer.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil,
        write: @escaping @Sendable (String) -> Void)
    {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        write(Self.line(time: Self.now(), level: event.level, label: label, message: event.message.description,
            source: event.source, metadata: merged))
    }

    /// The line for one event (with its trailing newline).
    public static func line(time: String, level: Logger.Level, label: String, message: String, source: String,
        metadata: Logger.Metadata) -> String
    {
        var metadata = metadata
        var out = "{\"time\":"
        appendString(time, to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"logger\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"source\":"
        appendString(source, to: &out)
        for key in ["trace_id", "span_id"] {
            guard let value = metadata.removeValue(forKey: key) else { continue }
            out += ",\"\(key)\":"
            appendString(value.description, to: &out)
        }
        if !metadata.isEmpty {
            out += ",\"metadata\":"
            appendValue(.dictionary(metadata), to: &out)
        }
        out += "}\n"
        return out
    }

    /// Now as RFC 3339 UTC with milliseconds, e.g. `2026-12-06T20:01:02.123Z`.
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return timestamp(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec) / 1_000_000)
    }

    /// A Unix time as RFC 3339 UTC with milliseconds.
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func padded(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2)
            + "T" + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2)
            + "." + padded(Int32(milliseconds), 3) + "Z"
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let entries):
            out += "{"
            // Sorted, so the same metadata always reads the same.
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(entries[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string (RFC 8259): quotes, backslashes and control characters escaped.
    private static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// How `hms-act serve` writes its log: `text` (swift-log's lines, the default) or `json`.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}
