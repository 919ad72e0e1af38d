/// A min-heap of timed items; items due at the same time come out in insertion order, so a
/// simulation that schedules the same things in the same order runs the same way every time.
///
/// The heap itself holds only plain integers (time, sequence, slot): the items wait in a slab
/// and are never moved while the heap is reordered, so sifting costs no reference counting.
struct EventQueue<Item> {
    private struct Entry {
        let time: Int64
        let sequence: UInt64
        let slot: Int32

        func precedes(_ other: Entry) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    private var heap: [Entry] = []
    private var slab: [Item?] = []
    private var freeSlots: [Int32] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    /// When the earliest item is due.
    var nextTime: Int64? { heap.first?.time }

    mutating func push(_ item: Item, at time: Int64) {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slab[Int(free)] = item
        } else {
            slot = Int32(slab.count)
            slab.append(item)
        }
        heap.append(Entry(time: time, sequence: nextSequence, slot: slot))
        nextSequence += 1
        var child = heap.count - 1
        let entry = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry.precedes(heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = entry
    }

    mutating func pop() -> (time: Int64, item: Item)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { break }
                let right = left + 1
                let child = right < heap.count && heap[right].precedes(heap[left]) ? right : left
                guard heap[child].precedes(last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        let item = slab[Int(top.slot)].take()!
        freeSlots.append(top.slot)
        return (top.time, item)
    }
}
