/// Distinct elements kept in ascending order in an array: for the few peers of a node, looked
/// up and walked in order far more often than changed, one short array to search beats a set
/// to hash (and sorting it each time it is walked). Inlinable, so that the simulator's use
/// is specialized.
public struct SortedArray<Element: Comparable> {
    @usableFromInline var storage: [Element] = []

    @inlinable public init() {}

    /// The elements, in ascending order.
    @inlinable public var elements: [Element] { storage }

    @inlinable public func contains(_ element: Element) -> Bool {
        let at = position(of: element)
        return at < storage.count && storage[at] == element
    }

    /// Inserts `element` unless present; returns whether it was new.
    @inlinable @discardableResult
    public mutating func insert(_ element: Element) -> Bool {
        let at = position(of: element)
        guard at == storage.count || storage[at] != element else { return false }
        storage.insert(element, at: at)
        return true
    }

    /// Removes `element`; returns whether it was there.
    @inlinable @discardableResult
    public mutating func remove(_ element: Element) -> Bool {
        let at = position(of: element)
        guard at < storage.count && storage[at] == element else { return false }
        storage.remove(at: at)
        return true
    }

    /// Where `element` is, or would be.
    @inlinable func position(of element: Element) -> Int {
        var low = 0, high = storage.count
        while low < high {
            let middle = (low + high) / 2
            if storage[middle] < element { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
