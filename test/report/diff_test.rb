# frozen_string_literal: true

require "test_helper"
require "json"
require "fileutils"
require "open3"
require "tmpdir"
require "zlib"
require_relative "../support/file_capture"
require_relative "../support/heap_graph_reference"

# heapcapture diff: known dumps give known numbers (two and three dumps), and what holds the
# growth; a dump diffed with itself is empty; three dumps of a fixture whose cache grows among
# garbage give what test/support/heap_graph_reference.rb computes (the cache's site first, the
# garbage's held by nothing, the cache the holder); three real captures find what the process kept
# between them, at its line; a GC.compact between captures, or dumps of two processes, is said;
# bad input is one line, exit 1.
class DiffTest < HCTest::TestCase
  include HCTest::FileCapture
  ROOT = HCTest::ROOT
  FIXTURE = File.join(ROOT, "test/fixtures/retention/growth.rb")

  def setup = use_file_destination

  def teardown = remove_file_destination

  def record(address, type, memsize, site = nil, references: nil)
    fields = { "address" => format("0x%x", address), "type" => type }
    fields["references"] = references.map { |a| format("0x%x", a) } if references
    fields.merge!("file" => site[0], "line" => site[1], "generation" => 3) if site
    JSON.generate(fields.merge("memsize" => memsize))
  end

  def write_dump(name, records, roots: [])
    path = File.join(@dest, name)
    root = JSON.generate("type" => "ROOT", "root" => "vm", "references" => roots.map { |a| format("0x%x", a) })
    File.write(path, ([root] + records).join("\n") + "\n")
    path
  end

  def test_known_dumps_give_known_numbers
    old = write_dump("old.ndjson", [record(1, "STRING", 40), record(2, "STRING", 40), record(3, "HASH", 160)])
    new = write_dump("new.ndjson", [record(2, "STRING", 40), record(3, "HASH", 160), record(4, "STRING", 80, ["a.rb", 1]),
                                    record(5, "ARRAY", 56, ["a.rb", 2], references: [4, 6]), record(6, "STRING", 80, ["a.rb", 1]),
                                    "{broken"])
    later = write_dump("later.ndjson", [record(3, "HASH", 160), record(4, "STRING", 80, ["a.rb", 1]),
                                        record(6, "STRING", 80, ["a.rb", 1]), record(7, "OBJECT", 40)])
    two = diff_json(old, new)
    assert_equal [3, 216], two.values_at("objects", "memsize")
    # no root holds anything: all of it awaits GC
    assert_equal({ "STRING" => { "objects" => 2, "memsize" => 160, "retained_objects" => 0, "retained_memsize" => 0 },
                   "ARRAY" => { "objects" => 1, "memsize" => 56, "retained_objects" => 0, "retained_memsize" => 0 } },
                 two["types"])
    assert_equal ["computed", { "objects" => 0, "memsize" => 0 }, { "objects" => 3, "memsize" => 216 }],
                 [two["retention"], two["growth"]["retained"], two["growth"]["garbage"]]
    assert_equal [site("a.rb", 1, [2, 160], [0, 0]), site("a.rb", 2, [1, 56], [0, 0])], two["sites"],
                 "sites of garbage only, by their garbage"
    assert_equal [[], nil], two.values_at("holders", "holder")
    assert_equal [{ "address" => "0x5", "type" => "ARRAY", "references" => 2, "memsize" => 56, "file" => "a.rb", "line" => 2 }],
                 two["most_references"]
    assert_equal 1, two["invalid_lines"]
    assert_match(/not known/, two["caveat"])
    three = diff_json(old, new, later)
    assert_equal [2, 160], three.values_at("objects", "memsize")
    assert_equal({ "STRING" => { "objects" => 2, "memsize" => 160, "retained_objects" => 0, "retained_memsize" => 0 } },
                 three["types"])
    assert_equal [5, 0], three.values_at("lines", "invalid_lines"), "the lines of the dump analysed: LATER's"
    out, err, status = cli("diff", old, new, later)
    assert status.success?, err
    assert out.start_with?("in #{new}, not in #{old} and still in #{later}: 2 objects, 160 bytes memsize\n"), out
    assert_includes out, "  (as #{later} has them: whether they are still held is judged there)\n"
    assert_includes out, "  retained (reachable from a root): 0 objects, 0 bytes memsize\n"
    assert_match(/^ +0 bytes +0 +160 bytes  a\.rb:1$/, out, "the site: nothing retained, 160 bytes awaiting GC")
    assert_match(/^ +160 bytes +2  a\.rb:1$/, out, "by count")
    assert_match(/what is holding the growth .*:\n  \(nothing: no root reaches a new object\)\n/, out)
    assert_match(/objects holding the most references:\n.*\n +2 +56 bytes  ARRAY 0x5 at a\.rb:2$/, cli("diff", old, new)[0])
  end

  # An old object holds an old Array that gains three new strings; a new string nothing holds.
  # The Array is the deepest object holding all the growth the roots reach: the holder.
  def test_what_holds_the_growth_in_known_dumps
    old = write_dump("old.ndjson", [record(0x10, "OBJECT", 40, references: [0x20]), record(0x20, "ARRAY", 100, ["a.rb", 5])],
                     roots: [0x10])
    new = write_dump("new.ndjson", [record(0x10, "OBJECT", 40, references: [0x20]),
                                    record(0x20, "ARRAY", 100, ["a.rb", 5], references: [0x31, 0x32, 0x33]),
                                    record(0x31, "STRING", 1000, ["a.rb", 7]), record(0x32, "STRING", 1000, ["a.rb", 7]),
                                    record(0x33, "STRING", 1000, ["a.rb", 7]), record(0x40, "STRING", 5000, ["a.rb", 9])],
                     roots: [0x10])
    diff = diff_json(old, new)
    assert_equal [{ "objects" => 3, "memsize" => 3000 }, { "objects" => 1, "memsize" => 5000 }],
                 diff["growth"].values_at("retained", "garbage")
    assert_equal [site("a.rb", 7, [3, 3000], [3, 3000]), site("a.rb", 9, [1, 5000], [0, 0])], diff["sites"]
    holder = diff["holder"]
    assert_equal ["0x20", 3000, 3, 1.0], holder.values_at("address", "growth_memsize", "growth_objects", "growth_share")
    assert_equal [nil, "0x10", "0x20"], holder["path"].map { |hop| hop["address"] }
    assert_equal %w[0x20 0x31 0x32 0x33], diff["holders"].map { |h| h["address"] }, "the Array, then each string"
    assert_equal [3000, 1000, 1000, 1000], diff["holders"].map { |h| h["growth_memsize"] }
    out, err, status = cli("diff", old, new)
    assert status.success?, err
    assert_includes out, "\nwhat is holding the growth (the deepest object holding at least 80% of the most any object " \
                         "holds):\n  ARRAY 0x20 at a.rb:5 holds 2.9 KiB of the growth (100.0% of what is retained) in 3 " \
                         "new objects\n    path from a root:\n      ROOT vm\n" \
                         "      OBJECT 0x10  memsize 40 bytes, retains 3.1 KiB\n" \
                         "      ARRAY 0x20 at a.rb:5  memsize 100 bytes, retains 3.0 KiB\n"
    table = out[/^holders of the growth .*:\n((?:  .*\n)+)/, 1]
    assert_match(/\A +growth +new objects +share  object\n +2\.9 KiB +3 +100\.0%  ARRAY 0x20 at a\.rb:5\n/, table)
    assert_includes out, "  awaiting GC (reachable from no root: freed by the next GC, not growth that stays): 1 objects, " \
                         "4.9 KiB memsize\n"
  end

  # The fixture's three dumps (test/fixtures/retention/growth.rb): its cache Array gains 400 records
  # of ~1 KB between the first two, among 2.4 MB of dropped buffers (the GC off: garbage in the
  # dumps); before the third it lets the first 100 go. Every figure diff gives, two dumps and
  # three, is the reference's (HeapGraphReference: reachability, dominators, computed in Ruby).
  def test_growth_of_a_cache_among_garbage_equals_the_reference
    old, new, later, facts = growth_fixture
    record_site = [facts["file"], facts["record_line"]]
    dropped_site = [facts["file"], facts["dropped_line"]]
    { "two dumps" => [old, new], "three dumps" => [old, new, later] }.each do |what, paths|
      diff = diff_json(*paths, "--top", "100000")
      want = growth_reference(*paths)
      assert_equal "computed", diff["retention"], what
      assert_equal [want[:retained], want[:garbage], { "objects" => 0, "memsize" => 0 }],
                   diff["growth"].values_at("retained", "garbage", "own"), "#{what}: retained and awaiting GC"
      both = %w[objects memsize].map { |key| want[:retained][key] + want[:garbage][key] }
      assert_equal both, diff.values_at("objects", "memsize"), "#{what}: the tally counts the same objects"
      assert_equal want[:sites].size, diff["sites"].size, "#{what}: every site of the growth"
      diff["sites"].each do |s|
        assert_equal want[:sites].fetch([s["file"], s["line"]]), s.except("file", "line"),
                     "#{what}: site #{s['file']}:#{s['line']}"
      end
      assert_equal record_site, diff["sites"].first.values_at("file", "line"), "#{what}: the cache's records first"
      dropped = diff["sites"].find { |s| s.values_at("file", "line") == dropped_site }
      assert_equal [0, 0], dropped.values_at("retained_objects", "retained_memsize"), "#{what}: the dropped buffers: garbage"
      assert_operator dropped["garbage_memsize"], :>=, 300 * 8192, what
      records = diff["classes"].find { |c| c["class"] == "GrowthRecord" }
      assert_equal want[:records], records.values_at("objects", "retained_objects"), "#{what}: the GrowthRecords"

      holder = diff["holder"]
      assert_equal [facts["cache"], facts["cache"]], [want[:holder], holder["address"]], "#{what}: the cache holds the growth"
      assert_equal want[:sums].fetch(facts["cache"]), holder.values_at("growth_memsize", "growth_objects"), what
      assert_growth_path(want[:ref], holder, what)
      assert_equal want[:holders].sort, diff["holders"].map { |h| h["address"] }.sort, "#{what}: the holders (all of them)"
      assert_equal diff["holders"].map { |h| -h["growth_memsize"] }.sort, diff["holders"].map { |h| -h["growth_memsize"] }
      diff["holders"].each do |h|
        assert_equal want[:sums].fetch(h["address"]), h.values_at("growth_memsize", "growth_objects"), "#{what}: #{h['address']}"
      end
    end
    two, three = [[old, new], [old, new, later]].map { |paths| diff_json(*paths, "--top", "100000") }
    site = ->(diff) { diff["sites"].first }
    assert_operator site[two]["retained_objects"], :>=, 800, "the 400 records and their strings, all held"
    assert_operator site[three]["garbage_objects"], :>=, 200, "the 100 let go before LATER: garbage there"
    assert_operator site[three]["retained_objects"], :>=, 600

    out, err, status = cli("diff", old, new, later)
    assert status.success?, err
    held = out[/^what is holding the growth.*:\n((?:  .*\n)+)/, 1]
    assert held, out
    assert_match(/\A\ \ ARRAY\ \(Array\)\ #{facts['cache']}\ at\ .*\ holds\ [\d.]+\ KiB\ of\ the\ growth
                  \ \([\d.]+%\ of\ what\ is\ retained\)\ in\ [\d,]+\ new\ objects\n
                  \ {4}path\ from\ a\ root:\n\ {6}ROOT\ /x, held)
    assert_match(/^      ARRAY \(Array\) #{facts['cache']} .*\n\z/, held, "the path ends at the cache")
    assert_operator out.index("what is holding the growth"), :<, out.index("holders of the growth"), out
  end

  # Without ROOT records and references nothing says what holds what: the tally alone, and why.
  def test_a_dump_without_roots_has_its_tally_and_says_why
    old = File.join(@dest, "old.ndjson")
    File.write(old, "#{record(1, 'STRING', 40)}\n")
    new = File.join(@dest, "new.ndjson")
    File.write(new, "#{record(1, 'STRING', 40)}\n#{record(2, 'HASH', 160, ['a.rb', 3])}\n")
    diff = diff_json(old, new)
    assert_equal [1, 160], diff.values_at("objects", "memsize")
    assert_match(/\Anot computed: .*new\.ndjson has no ROOT records and no references/, diff["retention"])
    assert_nil diff["growth"]
    assert_equal [{ "file" => "a.rb", "line" => 3, "objects" => 1, "memsize" => 160, "references" => 0 }], diff["sites"]
    out, err, status = cli("diff", old, new)
    assert status.success?, err
    assert_match(/^  retention: not computed: .*no ROOT records/, out)
    assert_match(/^top sites by memsize \(garbage included: no retention analysis\).*\n.*\n +160 bytes +1  a\.rb:3$/, out)
    refute_includes out, "what is holding the growth"
  end

  def test_a_dump_diffed_with_itself_is_empty
    dump = write_dump("d.ndjson", [record(1, "STRING", 40), record(2, "HASH", 160)])
    assert_equal [0, 0, []], diff_json(dump, dump).values_at("objects", "memsize", "sites")
    out, err, status = cli("diff", dump, dump)
    assert status.success?, err
    assert_match(/: 0 objects, 0 bytes memsize\n/, out)
  end

  def test_three_captures_find_what_was_kept_between_them_at_its_line
    ObjectSpace.trace_object_allocations_start
    keys = []
    kept = []
    keys << File.basename(capture!)
    line = __LINE__ + 1
    2.times { kept << Array.new(5000) { |i| "kept between captures #{i}" } }
    keys << File.basename(capture!)
    kept.pop # half of what was kept is let go before the third
    GC.start
    keys << File.basename(capture!)
    ObjectSpace.trace_object_allocations_stop

    env = { "HEAPCAPTURE_DESTINATION" => "file://#{@dest}", "HEAPCAPTURE_TMPDIR" => @tmpdir }
    out, err, status = cli("diff", *keys, "--json", env: env)
    assert status.success?, err
    diff = JSON.parse(out)
    site = diff["sites_by_count"].find { |s| s["file"] == __FILE__ && s["line"] == line }
    assert site, "the kept strings' site: #{diff['sites_by_count'].first(3)}"
    assert_operator site["objects"], :>=, 5000
    assert_operator site["objects"], :<, 10_000, "what was let go before the third dump is not counted"
    assert_nil diff["caveat"], "one process, no compaction"
    assert_equal keys.sort, Dir.children(@dest).grep(/ndjson/).sort, "downloads were removed"

    GC.compact
    keys << File.basename(capture!)
    out, err, status = cli("diff", keys[1], keys[3], env: env)
    assert status.success?, err
    assert_match(/^  note: GC\.compact ran between these dumps \(compactions \d+ -> \d+\)/, out)
    kept.clear
  end

  def test_dumps_of_two_processes_are_said
    old = write_dump("a-heap.ndjson", [record(1, "STRING", 40)])
    new = write_dump("b-heap.ndjson", [record(2, "STRING", 40)])
    [[old, 11], [new, 12]].each do |path, pid|
      File.write(path.sub(".ndjson", ".summary.json"), JSON.generate("pid" => pid, "gc_compact_count" => 0))
    end
    assert_match(/different processes \(pid 11, pid 12\)/, diff_json(old, new)["caveat"])
  end

  def test_bad_input_is_one_clear_line_and_exit_1
    good = write_dump("good.ndjson", [record(1, "STRING", 40)])
    empty = File.join(@dest, "empty.ndjson").tap { |p| File.write(p, "") }
    text = File.join(@dest, "notes.txt").tap { |p| File.write(p, "hello\n") }
    cut = File.join(@dest, "cut.ndjson.gz")
    File.binwrite(cut, Zlib.gzip(File.read(good) * 50)[0, 30])
    { [empty, good] => /empty\.ndjson is empty/, [text, good] => /notes\.txt is not a heap dump/,
      [good, cut] => /cut\.ndjson\.gz is not a whole gzip file/, [good, text] => /notes\.txt is not a heap dump/,
      [good, good, text] => /notes\.txt is not a heap dump/, [good, cut, good] => /cut\.ndjson\.gz is not a whole gzip/ }
      .each do |args, message|
        out, err, status = cli("diff", *args)
        assert_equal [1, ""], [status.exitstatus, out], err
        assert_match message, err
        assert_equal 1, err.lines.size, err
      end
    _, err, status = cli("diff", good)
    assert_equal 2, status.exitstatus, err
  end

  private

  # The fixture's three dumps, made once: [old, new, later, facts].
  def growth_fixture
    dir = Dir.mktmpdir("hc-diff-growth-")
    paths = %w[old new later].map { |name| File.join(dir, "#{name}.ndjson") }
    out, err, status = Open3.capture3({ "RUBYOPT" => nil }, RbConfig.ruby, FIXTURE, *paths)
    assert status.success?, "fixture: #{err}"
    [*paths, JSON.parse(out)]
  ensure
    Minitest.after_run { FileUtils.rm_rf(dir) } if dir
  end

  # What diff should say, computed by HeapGraphReference over the dump analysed (later, else new):
  # its objects made between old and new (address not in old, and in new), held or not, by site;
  # the growth each object holds (the new memsize and objects in its dominator subtree, summed up
  # each new object's dominator chain); the holder (the deepest object on the chain below the one
  # holding most that holds at least 80% of it); the holders (every object holding growth but
  # one a dominated object holds 90% of, and the holder).
  def growth_reference(old, new, later = nil)
    before = HeapGraphReference.new(old)
    made = later ? HeapGraphReference.new(new) : nil
    ref = HeapGraphReference.new(later || new)
    is_new = ->(address) { !before.include?(address) && (made.nil? || made.include?(address)) }
    want = { ref: ref, retained: { "objects" => 0, "memsize" => 0 }, garbage: { "objects" => 0, "memsize" => 0 }, sites: {},
             sums: Hash.new { |h, k| h[k] = [0, 0] }, order: {}, records: [0, 0] }
    ref.each_record.with_index do |r, i|
      want[:order][r.address] = i
      next unless is_new.call(r.address)

      held = ref.reachable?(r.address)
      tally = want[held ? :retained : :garbage]
      tally["objects"] += 1
      tally["memsize"] += r.memsize
      add_to_site(want[:sites], r, held) if r.file
      if ref.class_name_of(r.address) == "GrowthRecord" && r.type == "STRUCT"
        want[:records] = [want[:records][0] + 1, want[:records][1] + (held ? 1 : 0)]
      end
      next unless held

      node = r.address
      while node.is_a?(String)
        want[:sums][node] = [want[:sums][node][0] + r.memsize, want[:sums][node][1] + 1]
        node = ref.idom(node)
      end
    end
    growth_holders(want)
  end

  def add_to_site(sites, record, held)
    site = sites[[record.file, record.line]] ||= %w[objects memsize retained_objects retained_memsize garbage_objects
                                                    garbage_memsize].to_h { |key| [key, 0] }
    kind = held ? "retained" : "garbage"
    site["objects"] += 1
    site["memsize"] += record.memsize
    site["#{kind}_objects"] += 1
    site["#{kind}_memsize"] += record.memsize
  end

  def growth_holders(want)
    ref = want[:ref]
    sums = want[:sums].select { |_, (memsize, _)| memsize.positive? }
    most = sums.values.map(&:first).max
    top = sums.select { |_, (memsize, _)| memsize == most }.keys.min_by { |a| want[:order][a] }
    bar = sums.select { |_, (memsize, _)| memsize * 100 >= most * 80 }.keys
    chain = bar.select { |a| a == top || ref.dominates?(top, a) }
    want[:holder] = chain.find { |a| chain.all? { |b| ref.dominates?(b, a) } }
    inner = sums.filter_map do |a, (memsize, _)|
      parent = ref.idom(a)
      parent if parent.is_a?(String) && memsize * 100 >= sums.fetch(parent)[0] * 90
    end
    want[:holders] = (sums.keys - inner) | [want[:holder]]
    want
  end

  # The holder's path: root first, each hop a reference to the next (an object's class counts),
  # as short as the reference's, ending at the holder.
  def assert_growth_path(ref, holder, what)
    root, *hops = holder["path"]
    addresses = hops.map { |h| h["address"] }
    assert_equal holder["address"], addresses.last, "#{what}: the path ends at the holder"
    assert_equal ref.path_length(holder["address"]) + 1, holder["path_length"], "#{what}: a shortest path"
    assert ref.root_edge?(root["root"], addresses.first), "#{what}: a #{root['root']} ROOT references #{addresses.first}"
    addresses.each_cons(2) { |from, to| assert ref.edge?(from, to), "#{what}: #{from} references #{to}" }
  end

  # A site as diff writes it, from [objects, memsize] in all and retained.
  def site(file, line, all, retained)
    { "file" => file, "line" => line, "objects" => all[0], "memsize" => all[1], "retained_objects" => retained[0],
      "retained_memsize" => retained[1], "garbage_objects" => all[0] - retained[0], "garbage_memsize" => all[1] - retained[1] }
  end

  def capture!
    result = HeapCapture.capture(mode: :fork)
    assert_equal "ok", result["status"], result["error"]
    result["location"]
  end

  def diff_json(*paths)
    out, err, status = cli("diff", *paths, "--json")
    assert status.success?, err
    JSON.parse(out)
  end

  def cli(*args, env: {})
    Open3.capture3(env, RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", File.join(ROOT, "exe/heapcapture"), *args)
  end
end
