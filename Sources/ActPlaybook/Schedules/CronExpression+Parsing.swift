extension CronExpression {
    /// One of the five fields of a schedule.
    ///
    /// The raw value is the name error messages use (`day-of-month`).
    public enum Field: String, Hashable, Sendable, CaseIterable {
        /// The first field: 0-59.
        case minute
        /// The second field: 0-23.
        case hour
        /// The third field: 1-31.
        case dayOfMonth = "day-of-month"
        /// The fourth field: 1-12 or `JAN`-`DEC`.
        case month
        /// The fifth field: 0-7 (0 and 7 are Sunday) or `SUN`-`SAT`.
        case dayOfWeek = "day-of-week"

        /// The values a number may have; 7 is Sunday as well as 0 in the day of the week.
        var bounds: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        /// Where `*`, `*/n` and `a/n` stop: the last value, except Saturday (6) for the day of the week, so
        /// that `*/2` means Sunday, Tuesday, Thursday and Saturday, and Sunday is not counted twice.
        var lastStepValue: Int {
            switch self {
            case .minute, .hour, .dayOfMonth, .month: bounds.upperBound
            case .dayOfWeek: 6
            }
        }

        /// Three-letter names for the values from `bounds.lowerBound` on, when the field has names.
        var names: [String] {
            switch self {
            case .minute, .hour, .dayOfMonth: []
            case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            }
        }

        /// What the field accepts, as a fix hint: "hours are 0-23".
        var accepted: String {
            switch self {
            case .minute: "minutes are 0-59"
            case .hour: "hours are 0-23"
            case .dayOfMonth: "days of the month are 1-31"
            case .month: "months are 1-12 or JAN-DEC"
            case .dayOfWeek: "days of the week are 0-7 (0 and 7 are both Sunday) or SUN-SAT"
            }
        }
    }

    /// Why a text is not a schedule: which field, where, what is wrong and how to fix it.
    ///
    /// ```
    /// column 3: hour 24 is out of range
    ///   fix: hours are 0-23
    /// ```
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The field the problem is in; `nil` when it is about the whole text (the number of fields, a macro).
        public var field: Field?
        /// Where the problem starts: 1 for the text's first character (counted in `Character`s).
        public var column: Int
        /// What is wrong, in one sentence that names the field.
        public var message: String
        /// What to write instead.
        public var fix: String

        /// An error at `column` (1-based) of the schedule's text, in `field` (`nil` for the whole text).
        public init(field: Field?, column: Int, message: String, fix: String) {
            self.field = field
            self.column = column
            self.message = message
            self.fix = fix
        }

        /// `column N: message`, then `  fix: …` on its own line, as a ``Diagnostic`` prints.
        public var description: String { "column \(column): \(message)\n  fix: \(fix)" }
    }

    /// The macros and the five fields each stands for.
    static let macros: [(name: String, fields: String)] = [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
    ]

    static let fiveFieldsHint = "write five fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *`"

    /// Reads a schedule: five fields, or one of the macros (see the type's discussion).
    ///
    /// Whitespace (spaces, tabs) separates the fields; leading and trailing whitespace is ignored.
    ///
    /// - Parameter text: The schedule as written, e.g. `30 2 * * 1-5` or `@daily`.
    /// - Throws: ``ParseError`` naming the field, the column, what is wrong and how to fix it.
    public init(parsing text: String) throws(ParseError) {
        let words = CronWord.split(text)
        guard let first = words.first else {
            throw ParseError(field: nil, column: 1, message: "the schedule is empty", fix: Self.fiveFieldsHint)
        }
        if first.text.hasPrefix("@") {
            let fields = try Self.fields(ofMacro: first, followedBy: words.dropFirst())
            do {
                self = try CronExpression(parsing: fields).withSource(text)
            } catch {
                preconditionFailure("every macro in the table stands for a valid schedule: \(error)")
            }
            return
        }
        guard words.count == 5 else {
            throw Self.fieldCountError(words, length: text.count)
        }
        let minutes = try CronFieldReader(.minute, words[0]).read()
        let hours = try CronFieldReader(.hour, words[1]).read()
        let daysOfMonth = try CronFieldReader(.dayOfMonth, words[2]).read()
        let months = try CronFieldReader(.month, words[3]).read()
        var daysOfWeek = try CronFieldReader(.dayOfWeek, words[4]).read()
        if daysOfWeek.contains(7) {
            daysOfWeek.bits &= ~(1 << 7)
            daysOfWeek.insert(0)
        }
        self.init(
            source: text,
            minutes: minutes,
            hours: hours,
            daysOfMonth: daysOfMonth,
            months: months,
            daysOfWeek: daysOfWeek,
            dayOfMonthStartsWithStar: words[2].text.hasPrefix("*"),
            dayOfWeekStartsWithStar: words[4].text.hasPrefix("*")
        )
    }

    /// The five fields a macro stands for.
    private static func fields(ofMacro word: CronWord, followedBy rest: ArraySlice<CronWord>) throws(ParseError)
        -> String
    {
        let names = macros.map(\.name).joined(separator: ", ")
        guard let macro = macros.first(where: { $0.name == word.text.lowercased() }) else {
            if word.text.lowercased() == "@reboot" {
                throw ParseError(
                    field: nil,
                    column: word.column,
                    message: "`@reboot` runs when a machine starts, which is not a time a schedule can name",
                    fix: "use one of \(names), or \(fiveFieldsHint)"
                )
            }
            throw ParseError(
                field: nil,
                column: word.column,
                message: "`\(word.text)` is not a schedule macro",
                fix: "use one of \(names), or \(fiveFieldsHint)"
            )
        }
        if let extra = rest.first {
            throw ParseError(
                field: nil,
                column: extra.column,
                message: "`\(macro.name)` stands alone, but `\(extra.text)` follows it",
                fix: "remove what follows `\(macro.name)`, or write five fields instead: `\(macro.fields)`"
            )
        }
        return macro.fields
    }

    /// The same schedule, remembering `source` as its text (a macro keeps the macro).
    private func withSource(_ source: String) -> CronExpression {
        CronExpression(
            source: source,
            minutes: minutes,
            hours: hours,
            daysOfMonth: daysOfMonth,
            months: months,
            daysOfWeek: daysOfWeek,
            dayOfMonthStartsWithStar: dayOfMonthStartsWithStar,
            dayOfWeekStartsWithStar: dayOfWeekStartsWithStar
        )
    }

    private static func fieldCountError(_ words: [CronWord], length: Int) -> ParseError {
        if words.count < 5 {
            let missing = Field.allCases[words.count...].map(\.rawValue).joined(separator: ", ")
            return ParseError(
                field: nil,
                column: length + 1,
                message: "the schedule has \(words.count) field\(words.count == 1 ? "" : "s"), "
                    + "but needs five; \(missing) \(words.count == 4 ? "is" : "are") missing",
                fix: fiveFieldsHint
            )
        }
        let seconds = words.count == 6 ? " (seconds or years are not supported)" : ""
        return ParseError(
            field: nil,
            column: words[5].column,
            message: "the schedule has \(words.count) fields, but needs five\(seconds)",
            fix: fiveFieldsHint
        )
    }
}

/// A run of text between whitespace (spaces, tabs, line breaks), with its 1-based column.
struct CronWord {
    var text: String
    var column: Int

    static func split(_ text: String) -> [CronWord] {
        var words: [CronWord] = []
        var current = ""
        var start = 0
        for (index, character) in text.enumerated() {
            if character.isWhitespace {
                if !current.isEmpty { words.append(CronWord(text: current, column: start + 1)) }
                current = ""
            } else {
                if current.isEmpty { start = index }
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(CronWord(text: current, column: start + 1)) }
        return words
    }
}

/// Reads one field (`1-5`, `*/15`, `MON-FRI,SUN`) into the set of values it allows.
struct CronFieldReader {
    typealias Field = CronExpression.Field
    typealias ParseError = CronExpression.ParseError

    let field: Field
    let word: CronWord

    init(_ field: Field, _ word: CronWord) {
        self.field = field
        self.word = word
    }

    func read() throws(ParseError) -> CronValueSet {
        var values = CronValueSet()
        var column = word.column
        for item in word.text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else {
                throw error(
                    at: column,
                    "\(field.rawValue) `\(word.text)` has an empty list item",
                    fix: "remove the extra comma; list items are separated by single commas, e.g. `1,15`"
                )
            }
            for value in try element(String(item), at: column) { values.insert(value) }
            column += item.count + 1
        }
        return values
    }

    /// One list item: `*`, `a`, `a-b`, each optionally followed by `/step`.
    private func element(_ item: String, at column: Int) throws(ParseError) -> StrideThrough<Int> {
        let parts = item.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else {
            throw error(
                at: column,
                "\(field.rawValue) `\(item)` has more than one `/`",
                fix: "write one step, e.g. `*/15` or `0-30/5`"
            )
        }
        let base = String(parts[0])
        let step = try parts.count == 2 ? self.step(String(parts[1]), at: column + base.count + 1, in: item) : nil
        if base == "*" {
            return stride(from: field.bounds.lowerBound, through: field.lastStepValue, by: step ?? 1)
        }
        guard !base.isEmpty else {
            throw error(
                at: column,
                "\(field.rawValue) `\(item)` has a step but nothing to step through",
                fix: "put `*` or a range before the `/`, e.g. `*\(item)`"
            )
        }
        let ends = base.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count <= 2 else {
            throw error(
                at: column,
                "\(field.rawValue) range `\(base)` has more than one `-`",
                fix: "a range is two values, e.g. `1-5`; \(field.accepted)"
            )
        }
        let low = try value(String(ends[0]), at: column, in: item)
        guard ends.count == 2 else {
            // `a/n` steps from `a` to the end of the field; plain `a` is the one value.
            return stride(from: low, through: step == nil ? low : max(low, field.lastStepValue), by: step ?? 1)
        }
        let high = try value(String(ends[1]), at: column + ends[0].count + 1, in: item)
        guard low <= high else {
            let wrap =
                field == .dayOfWeek && high == 0
                ? "write `\(ends[0])-7` (7 is also Sunday)"
                : "write the smaller value first, or two ranges such as `\(ends[0])-\(field.bounds.upperBound),"
                    + "\(field.bounds.lowerBound)-\(ends[1])`"
            throw error(at: column, "\(field.rawValue) range `\(base)` runs backwards", fix: wrap)
        }
        return stride(from: low, through: high, by: step ?? 1)
    }

    private func step(_ text: String, at column: Int, in item: String) throws(ParseError) -> Int {
        guard !text.isEmpty else {
            throw error(
                at: column,
                "\(field.rawValue) `\(item)` has no step after the `/`",
                fix: "write the step, e.g. `*/5` for every fifth value"
            )
        }
        guard let step = Self.number(text) else {
            throw error(
                at: column,
                "\(field.rawValue) step `\(text)` is not a whole number",
                fix: "a step counts values, e.g. `*/5` for every fifth"
            )
        }
        guard step >= 1 else {
            throw error(
                at: column,
                "\(field.rawValue) step `/\(text)` must be at least 1",
                fix: "use `*` for every value, or a step such as `*/5`"
            )
        }
        return step
    }

    /// A number or, for months and days of the week, a three-letter name; within the field's bounds.
    private func value(_ text: String, at column: Int, in item: String) throws(ParseError) -> Int {
        if text.isEmpty {
            throw error(
                at: column,
                "\(field.rawValue) range `\(item)` is missing a value",
                fix: "a range has a value on each side of the `-`, e.g. `1-5`; \(field.accepted)"
            )
        }
        if let number = Self.number(text) {
            guard field.bounds.contains(number) else {
                throw error(at: column, "\(field.rawValue) \(text) is out of range", fix: field.accepted)
            }
            return number
        }
        // ASCII only: Unicode would uppercase the long s in `ſun` to `SUN`.
        if text.allSatisfy(\.isASCII), let index = field.names.firstIndex(of: text.uppercased()) {
            return field.bounds.lowerBound + index
        }
        if text == "*" {
            throw error(
                at: column,
                "\(field.rawValue) range `\(item)` uses `*` as one of its ends",
                fix: "write `*` alone for every value, or a range of values such as `1-5`; \(field.accepted)"
            )
        }
        if text.allSatisfy(\.isNumber), text.allSatisfy(\.isASCII) {
            // Too many digits for an Int: out of range all the same.
            throw error(at: column, "\(field.rawValue) \(text) is out of range", fix: field.accepted)
        }
        throw unsupported(text, at: column)
    }

    /// The error for a value that is neither a number nor a name: Quartz syntax gets its own explanation.
    private func unsupported(_ text: String, at column: Int) -> ParseError {
        let upper = text.uppercased()
        let classic = "hms-act schedules are classic five-field cron: values, `*`, `,`, `-` and `/`"
        if text.contains("?") {
            return error(
                at: column,
                "\(field.rawValue) `\(text)` uses `?` (\"no specific value\"), which is Quartz syntax",
                fix: "write `*` instead; \(classic)"
            )
        }
        if text.contains("#") {
            return error(
                at: column,
                "\(field.rawValue) `\(text)` uses `#` (\"the nth weekday\"), which classic cron does not have",
                fix: "fire on the days it can fall on (`1-7` for the first) with `*` as the weekday, "
                    + "and check the weekday in the playbook; \(classic)"
            )
        }
        if upper.hasSuffix("W") && (upper.dropLast().allSatisfy(\.isNumber) || upper == "LW") {
            return error(
                at: column,
                "\(field.rawValue) `\(text)` uses `W` (\"the nearest weekday\"), which classic cron does not have",
                fix: "fire on the days it can fall on (`14-16` for the weekday nearest the 15th) and check the "
                    + "weekday in the playbook; \(classic)"
            )
        }
        if upper == "L" || (upper.hasSuffix("L") && upper.dropLast().allSatisfy(\.isNumber)) {
            let days = field == .dayOfWeek ? "`22-31`, with `*` as the weekday" : "`28-31`"
            return error(
                at: column,
                "\(field.rawValue) `\(text)` uses `L` (\"the last\"), which classic cron does not have",
                fix: "fire on the days it can fall on (\(days)) and check the date in the playbook; \(classic)"
            )
        }
        let what = field.names.isEmpty ? "a number" : "a number or a three-letter name"
        return error(at: column, "\(field.rawValue) `\(text)` is not \(what)", fix: field.accepted)
    }

    /// ASCII digits only (no sign, no spaces), or `nil`; `nil` too when the digits overflow an `Int`.
    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text)
    }

    private func error(at column: Int, _ message: String, fix: String) -> ParseError {
        ParseError(field: field, column: column, message: message, fix: fix)
    }
}
