import Foundation
import TrellisWire

extension Value {
    /// A value from what `JSONSerialization` parsed: objects become maps, numbers ints when
    /// they are whole, and anything else (`null`) nil.
    public init(jsonObject object: Any) {
        switch object {
        case let number as NSNumber:
            // JSONSerialization makes booleans NSNumbers of type char ('c'); it never makes other chars.
            if String(cString: number.objCType) == "c" {
                self = .bool(number.boolValue)
                return
            }
            let double = number.doubleValue
            self = double.rounded() == double ? Int64(exactly: double).map(Value.int) ?? .float(double) : .float(double)
        case let string as String:
            self = .string(string)
        case let array as [Any]:
            self = .array(array.map(Value.init(jsonObject:)))
        case let dictionary as [String: Any]:
            self = .map(dictionary.mapValues(Value.init(jsonObject:)))
        default:
            self = .nil
        }
    }

    /// The value as `JSONSerialization` writes it: maps with string keys become objects (other
    /// keys are written as their description), bytes become strings when they are UTF-8.
    public var jsonObject: Any {
        switch self {
        case .nil: NSNull()
        case .bool(let flag): flag
        case .int(let number): number
        case .float(let number): number
        case .string(let text): text
        case .bytes(let bytes): String(validating: bytes, as: UTF8.self) ?? "<\(bytes.count) bytes>"
        case .array(let elements): elements.map(\.jsonObject)
        case .map(let entries):
            Dictionary(entries.map { ($0.key.stringValue ?? $0.key.description, $0.value.jsonObject) }) { first, _ in first }
        }
    }
}
