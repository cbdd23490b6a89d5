import ActPostgres
import Testing

/// What a ``PostgresConfiguration`` asks libpq and the server for: the timeouts, keepalives and the client's
/// answer deadline. Pure: no server needed.
@Suite struct ConnectionSettingsTests {
    static func configuration() -> PostgresConfiguration {
        PostgresConfiguration(user: "hms", password: "secret", database: "hms_act")
    }

    static func parameters(_ configuration: PostgresConfiguration) -> [String: String] {
        Dictionary(configuration.libpqParameters.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func everyConnectionCarriesTheDefaultTimeoutsAndKeepalives() {
        let parameters = Self.parameters(Self.configuration())
        #expect(
            parameters["options"]
                == "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c jit=off -c statement_timeout=30000"
                + " -c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000"
        )
        #expect(parameters["keepalives"] == "1")
        #expect(parameters["keepalives_idle"] == "10")
        #expect(parameters["keepalives_interval"] == "5")
        #expect(parameters["keepalives_count"] == "3")
        #expect(parameters["tcp_user_timeout"] == "30000")
        #expect(parameters["connect_timeout"] == "10")
        #expect(parameters["password"] == "secret")
        #expect(Self.configuration().answerTimeout == .seconds(35))
    }

    @Test func configuredValuesReachTheOptionsInMilliseconds() {
        var configuration = Self.configuration()
        configuration.statementTimeout = .milliseconds(1500)
        configuration.lockTimeout = .seconds(2)
        configuration.idleInTransactionSessionTimeout = .seconds(90)
        configuration.searchPath = "act_test"
        configuration.keepalives = .init(idle: .seconds(7), interval: .milliseconds(2500), count: 4)
        configuration.tcpUserTimeout = .seconds(12)
        configuration.connectTimeout = .seconds(4)
        configuration.answerTimeoutGrace = .milliseconds(500)
        let parameters = Self.parameters(configuration)
        #expect(
            parameters["options"]
                == "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c jit=off -c statement_timeout=1500"
                + " -c lock_timeout=2000 -c idle_in_transaction_session_timeout=90000 -c search_path=act_test"
        )
        #expect(parameters["keepalives_idle"] == "7")
        // libpq counts keepalive times in whole seconds: rounded up, never down to 0.
        #expect(parameters["keepalives_interval"] == "3")
        #expect(parameters["keepalives_count"] == "4")
        #expect(parameters["tcp_user_timeout"] == "12000")
        #expect(parameters["connect_timeout"] == "4")
        #expect(configuration.answerTimeout == .seconds(2))
    }

    @Test func zeroTurnsTimeoutsOffAndNilTurnsKeepalivesOff() {
        var configuration = Self.configuration()
        configuration.statementTimeout = .zero
        configuration.lockTimeout = .zero
        configuration.idleInTransactionSessionTimeout = .zero
        configuration.keepalives = nil
        configuration.tcpUserTimeout = .zero
        let parameters = Self.parameters(configuration)
        #expect(
            parameters["options"]
                == "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c jit=off -c statement_timeout=0"
                + " -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"
        )
        #expect(parameters["keepalives"] == "0")
        #expect(parameters["keepalives_idle"] == nil)
        #expect(parameters["tcp_user_timeout"] == "0")
        // Without a server-side statement timeout there is nothing to add a grace to: no client deadline.
        #expect(configuration.answerTimeout == nil)
    }

    @Test func tinyPositiveLimitsNeverBecomeZeroAndHugeOnesAreCapped() {
        var configuration = Self.configuration()
        configuration.statementTimeout = .microseconds(1)
        configuration.lockTimeout = .seconds(100_000_000)
        configuration.connectTimeout = .milliseconds(100)
        let parameters = Self.parameters(configuration)
        let options = parameters["options"] ?? ""
        #expect(options.contains("-c statement_timeout=1 "))
        #expect(options.contains("-c lock_timeout=2147483647 "))
        // libpq treats less than 2 s as 2 s; it is sent as 2 so that what is asked is what happens.
        #expect(parameters["connect_timeout"] == "2")
    }

    @Test func aSearchPathWithOtherCharactersIsNotPassedOn() {
        var configuration = Self.configuration()
        configuration.searchPath = "act -c statement_timeout=0"
        let options = Self.parameters(configuration)["options"] ?? ""
        #expect(!options.contains("search_path"))
        #expect(options.contains("statement_timeout=30000"))
        #expect(!options.contains("statement_timeout=0"))
    }

    @Test func timeoutErrorsAreTransientAndDistinct() {
        let answer = PostgresError(code: .timedOut)
        #expect(answer.isConnectionError)
        #expect(answer.isTimeout)
        let lease = PostgresError(code: .poolTimeout)
        #expect(!lease.isConnectionError)
        #expect(lease.isTimeout)
        #expect(lease.code != .poolClosed)
        #expect(PostgresError(code: .server, sqlState: "55P03").isLockNotAvailable)
        #expect(PostgresError(code: .server, sqlState: "55P03").isTimeout)
        #expect(PostgresError(code: .server, sqlState: "57014").isTimeout)
        // A cancellation this client asked for is not a timeout.
        #expect(!PostgresError(code: .cancelled, sqlState: "57014").isTimeout)
        #expect("\(PostgresError.Code.timedOut)" == "timedOut")
        #expect("\(PostgresError.Code.poolTimeout)" == "poolTimeout")
    }
}
