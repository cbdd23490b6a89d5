import ActPlaybook
import ArgumentParser
import Foundation

/// How a command prints what the server answered.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Aligned columns for people.
    case table
    /// The server's JSON, pretty-printed, for scripts (`| jq`).
    case json
}

/// The options every API command shares: where the server is, the token, and the output format.
struct ClientOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Option(name: [.short, .customLong("output")], help: "Output format: table or json.")
    var output: OutputFormat = .table

    /// The client these options describe.
    func client() throws(CLIError) -> APIClient {
        try connection.client()
    }
}

/// Where the API is and the token: `--api` falls back to `HMS_API_URL` and then `http://127.0.0.1:8100`;
/// `--token` to `HMS_API_TOKEN`. (`tasks complete` uses these alone: its `--output` is the task's output.)
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("api"), help: ArgumentHelp(
        "The hms-act API root (env HMS_API_URL; default http://127.0.0.1:8100).", valueName: "url"))
    var api: String?

    @Option(name: .customLong("token"), help: ArgumentHelp(
        "A bearer token of the API (env HMS_API_TOKEN).", valueName: "secret"))
    var token: String?

    static let defaultAPI = "http://127.0.0.1:8100"

    /// The client these options describe.
    ///
    /// - Throws: ``CLIError`` when the URL cannot be parsed.
    func client(environment: [String: String] = ProcessInfo.processInfo.environment) throws(CLIError) -> APIClient {
        let text = api ?? environment["HMS_API_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultAPI
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw CLIError("'\(text)' is not an http:// or https:// URL; pass e.g. --api http://127.0.0.1:8100")
        }
        let token = token ?? environment["HMS_API_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return APIClient(baseURL: url, token: token)
    }
}

/// A usage or input problem found by the CLI itself; printed as `error: <message>`.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Printing helpers shared by the commands.
enum Console {
    /// Writes `text` and a newline to standard error.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Runs a command body and turns errors into `error: …` on standard error and exit status 1.
    /// `ExitCode` and ArgumentParser's own errors pass through unchanged.
    static func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as APIError {
            if case .cancelled = error { throw ExitCode(130) }
            Self.error("error: \(error)")
            throw ExitCode.failure
        } catch let error as CLIError {
            Self.error("error: \(error)")
            throw ExitCode.failure
        } catch let error as PlaybookLoadError {
            for diagnostic in error.diagnostics { Self.error("\(diagnostic)") }
            throw ExitCode.failure
        }
    }

    /// A JSON value as indented text with sorted keys, as `-o json` prints it.
    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A JSON value on one line (table cells, outputs).
    static func compact(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Columns padded to their widest cell, two spaces apart; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// Parses a JSON option value (`--data`, `--output`, `--payload`).
    ///
    /// - Throws: ``CLIError`` naming the option and what is wrong.
    static func parseJSON(_ text: String, option: String) throws(CLIError) -> JSONValue {
        var source = text
        if source.hasPrefix("@") {
            let path = String(source.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError("\(option): cannot read the file '\(path)'")
            }
            source = String(decoding: data, as: UTF8.self)
        }
        do {
            return try JSONValue(parsing: Array(source.utf8))
        } catch {
            throw CLIError("\(option) is not valid JSON: \(text.prefix(80)); write e.g. \(option) '{\"severity\": \"High\"}' or \(option) @file.json")
        }
    }

    /// A JSON value as a short cell: strings bare, everything else compact JSON, `-` for null.
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return "-"
        case .string(let text)?: return text
        case .number(let number)?: return number.keyText
        case .bool(let bool)?: return String(bool)
        case .array?, .object?: return compact(value ?? .null)
        }
    }
}
