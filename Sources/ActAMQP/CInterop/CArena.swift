internal import CRabbitMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns the C memory behind the `amqp_bytes_t`, tables and arrays handed to rabbitmq-c for one call.
///
/// `amqp_cstring_bytes` on a Swift string would point into a temporary buffer that dies when the call
/// returns; copying into arena memory keeps every pointer valid until ``deallocateAll()`` (or deinit),
/// which the caller runs only after rabbitmq-c has serialised the method or content.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { deallocateAll() }

    func deallocateAll() {
        for pointer in allocations { free(pointer) }
        allocations.removeAll()
    }

    private func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        // malloc(0) may return NULL; rabbitmq-c ignores the pointer of an empty amqp_bytes_t anyway.
        guard let pointer = malloc(max(byteCount, 1)) else {
            preconditionFailure("out of memory allocating \(byteCount) bytes for rabbitmq-c")
        }
        allocations.append(pointer)
        return pointer
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var copy = string
        return copy.withUTF8 { utf8 in bytes(UnsafeRawBufferPointer(utf8)) }
    }

    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        let pointer = allocate(buffer.count)
        if let base = buffer.baseAddress, buffer.count > 0 { pointer.copyMemory(from: base, byteCount: buffer.count) }
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        array.withUnsafeBytes { bytes($0) }
    }

    /// A NUL-terminated copy, for rabbitmq-c calls that take `char const *`.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        let utf8 = Array(string.utf8CString)
        let pointer = allocate(utf8.count).bindMemory(to: CChar.self, capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return UnsafePointer(pointer)
    }

    func table(_ table: [String: AMQPFieldValue]) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        // Sorted keys: deterministic encoding, which makes declare arguments comparable in broker logs.
        for (index, key) in table.keys.sorted().enumerated() {
            entries.advanced(by: index).initialize(to: amqp_table_entry_t(key: bytes(key), value: field(table[key]!)))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = kind(AMQP_FIELD_KIND_UTF8)
            field.value.bytes = bytes(string)
        case .int(let integer):
            field.kind = kind(AMQP_FIELD_KIND_I64)
            field.value.i64 = integer
        case .bool(let flag):
            field.kind = kind(AMQP_FIELD_KIND_BOOLEAN)
            field.value.boolean = flag ? 1 : 0
        case .double(let number):
            field.kind = kind(AMQP_FIELD_KIND_F64)
            field.value.f64 = number
        case .table(let nested):
            field.kind = kind(AMQP_FIELD_KIND_TABLE)
            field.value.table = table(nested)
        case .array(let elements):
            field.kind = kind(AMQP_FIELD_KIND_ARRAY)
            let storage = allocate(MemoryLayout<amqp_field_value_t>.stride * max(elements.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(elements.count, 1))
            for (index, element) in elements.enumerated() {
                storage.advanced(by: index).initialize(to: self.field(element))
            }
            field.value.array = amqp_array_t(num_entries: Int32(elements.count), entries: storage)
        case .bytes(let raw):
            field.kind = kind(AMQP_FIELD_KIND_BYTES)
            field.value.bytes = bytes(raw)
        case .timestamp(let date):
            field.kind = kind(AMQP_FIELD_KIND_TIMESTAMP)
            field.value.u64 = UInt64(max(0, date.timeIntervalSince1970.rounded(.down)))
        case .void:
            field.kind = kind(AMQP_FIELD_KIND_VOID)
        }
        return field
    }

    private func kind(_ kind: amqp_field_value_kind_t) -> UInt8 { UInt8(truncatingIfNeeded: kind.rawValue) }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var result = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let value = properties.contentType {
            result.content_type = bytes(value)
            flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG)
        }
        if let value = properties.contentEncoding {
            result.content_encoding = bytes(value)
            flags |= UInt32(AMQP_BASIC_CONTENT_ENCODING_FLAG)
        }
        if !properties.headers.isEmpty {
            result.headers = table(properties.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        result.delivery_mode = UInt8(properties.persistent ? AMQP_DELIVERY_PERSISTENT.rawValue : AMQP_DELIVERY_NONPERSISTENT.rawValue)
        flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        if let value = properties.priority {
            result.priority = value
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let value = properties.correlationID {
            result.correlation_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG)
        }
        if let value = properties.replyTo {
            result.reply_to = bytes(value)
            flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG)
        }
        if let value = properties.expiration {
            result.expiration = bytes(value)
            flags |= UInt32(AMQP_BASIC_EXPIRATION_FLAG)
        }
        if let value = properties.messageID {
            result.message_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG)
        }
        if let value = properties.timestamp {
            result.timestamp = UInt64(max(0, value.timeIntervalSince1970.rounded(.down)))
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if let value = properties.type {
            result.type = bytes(value)
            flags |= UInt32(AMQP_BASIC_TYPE_FLAG)
        }
        if let value = properties.userID {
            result.user_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_USER_ID_FLAG)
        }
        if let value = properties.appID {
            result.app_id = bytes(value)
            flags |= UInt32(AMQP_BASIC_APP_ID_FLAG)
        }
        result._flags = flags
        return result
    }
}

/// Copies out of rabbitmq-c's pool memory into Swift values (the pool is recycled after each frame batch).
enum CDecode {
    static func bytes(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let base = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: self.bytes(bytes), as: UTF8.self)
    }

    static func table(_ table: amqp_table_t) -> [String: AMQPFieldValue] {
        var result: [String: AMQPFieldValue] = [:]
        guard table.num_entries > 0, let entries = table.entries else { return result }
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            result[string(entry.key)] = field(entry.value)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t) -> AMQPFieldValue {
        let value = field.value
        switch UInt32(field.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: return .int(value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: return .int(Int64(truncatingIfNeeded: value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: return .double(value.f64)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            var number = Double(value.decimal.value)
            for _ in 0..<value.decimal.decimals { number /= 10 }
            return .double(number)
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(bytes(value.bytes))
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue:
            return .timestamp(Date(timeIntervalSince1970: TimeInterval(value.u64)))
        case AMQP_FIELD_KIND_TABLE.rawValue: return .table(table(value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            var elements: [AMQPFieldValue] = []
            if value.array.num_entries > 0, let entries = value.array.entries {
                for index in 0..<Int(value.array.num_entries) { elements.append(self.field(entries[index])) }
            }
            return .array(elements)
        default: return .void  // AMQP_FIELD_KIND_VOID and kinds this library does not know.
        }
    }

    static func properties(_ properties: amqp_basic_properties_t) -> AMQPProperties {
        let flags = properties._flags
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        var result = AMQPProperties(persistent: false)
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { result.contentType = string(properties.content_type) }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { result.contentEncoding = string(properties.content_encoding) }
        if has(AMQP_BASIC_HEADERS_FLAG) { result.headers = table(properties.headers) }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) {
            result.persistent = UInt32(properties.delivery_mode) == AMQP_DELIVERY_PERSISTENT.rawValue
        }
        if has(AMQP_BASIC_PRIORITY_FLAG) { result.priority = properties.priority }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { result.correlationID = string(properties.correlation_id) }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { result.replyTo = string(properties.reply_to) }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { result.expiration = string(properties.expiration) }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { result.messageID = string(properties.message_id) }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) {
            result.timestamp = Date(timeIntervalSince1970: TimeInterval(properties.timestamp))
        }
        if has(AMQP_BASIC_TYPE_FLAG) { result.type = string(properties.type) }
        if has(AMQP_BASIC_USER_ID_FLAG) { result.userID = string(properties.user_id) }
        if has(AMQP_BASIC_APP_ID_FLAG) { result.appID = string(properties.app_id) }
        return result
    }
}
