# frozen_string_literal: true

require "test_helper"
require "json"
require "set"
require "tmpdir"
require "timeout"
require "zlib"
require "fileutils"
require_relative "../support/heap_graph_reference"
require_relative "../support/bounded_command"

# Retention: what a dump's objects keep alive. The fixtures under test/fixtures/retention each make
# known retention in a fresh ruby and dump it; HeapGraphReference (test/support) computes the
# analysis the slow obvious way in Ruby. First the reference is checked against what each fixture
# knows (and its dominators against a naive computation); then heapcapture's report and path
# against the reference, and path against sheap's find_path. Pure files: no service.
#
# The model (see the top of heap_graph_reference.rb): an object's class is an edge although
# dump_all leaves it out of "references" (the GC marks it): without it the records of (a) held
# through singleton methods look like garbage. On Ruby 3.1 so is an IMEMO's "class" (what its
# second word holds, mostly marked), but for a callcache's: a weak key the GC does not mark, with
# which the dropped singleton classes of gc_verdict, named by callcaches the VM keeps, would look
# retained (test_the_reference_agrees_with_the_gc: the GC collects them).
class RetentionTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  FIXTURES = File.join(ROOT, "test/fixtures/retention")
  EXE = File.join(ROOT, "exe/heapcapture")
  FIXTURE_TIMEOUT = 120
  CLI_TIMEOUT = 120
  ALL = %w[singleton_proxies constant_hash thread_local closure garbage].freeze
  # A fixture needs the standard library only: not bundler's setup (RUBYOPT=-rbundler/setup under
  # bundle exec), whose objects would only make its dump bigger.
  FIXTURE_ENV = { "RUBYOPT" => nil }.freeze

  Dump = Struct.new(:name, :path, :facts, :reference)

  # Each fixture's dump is made once per run (into one temporary folder, removed at the end), its
  # reference computed once.
  class << self
    # The references (every record of each fixture's dump, as Ruby objects: ~1 M objects) are this
    # test process's heap: kept past this class, every later test that captures this process
    # dumped, summarized and parsed them too (the suite took 4x as long).
    def run(*)
      super
    ensure
      @dumps = nil
    end

    def dump(name)
      @dumps ||= {}
      @dumps[name] ||= make_dump(name)
    end

    def tmpdir
      @tmpdir ||= Dir.mktmpdir("hc-retention-").tap { |dir| Minitest.after_run { FileUtils.rm_rf(dir) } }
    end

    # The fixture in a fresh ruby, bounded; its stdout is the JSON of what it knows.
    # gc_verdict writes a second dump, after a GC: NAME-after.ndjson beside the first.
    def make_dump(name)
      path = File.join(tmpdir, "#{name}.ndjson")
      after = name == "gc_verdict" ? [File.join(tmpdir, "#{name}-after.ndjson")] : []
      out, err, status = HCTest::BoundedCommand.run(FIXTURE_ENV, RbConfig.ruby, File.join(FIXTURES, "#{name}.rb"), path,
                                                    *after, timeout: FIXTURE_TIMEOUT)
      raise "fixture #{name} failed (#{status.inspect}): #{err}" unless status.success?

      Dump.new(name, path, JSON.parse(out), HeapGraphReference.new(path, keep: HeapGraphReference::KEEP + ["flags"]))
    end
  end

  def dump(name) = self.class.dump(name)

  # --- the reference, on a dump made by hand -------------------------------------------------------

  # Every case the model has, numbers worked out by hand: two ROOT references to one object, a
  # reference to an address not in the dump (from a ROOT and from an object), a reference to
  # itself, a line that is not JSON, a garbage cycle pointing into live objects, an object held
  # only through a singleton class (the class edge), a constant's value only a constcache's "class"
  # names (Ruby 3.1: an edge), a class only a callcache's "class" names (a weak key: no edge), a
  # SHAPE (Ruby 3.2+: held by the VM).
  HAND_MADE = <<~NDJSON
    {"type":"ROOT", "root":"vm", "references":["0x1", "0x2", "0x1"]}
    {"type":"ROOT", "root":"global_tbl", "references":["0x5", "0x99"]}
    {"type":"ROOT", "root":"global_list", "references":["0xc0"]}
    {"address":"0x1", "type":"OBJECT", "class":"0xc0", "references":["0x3", "0x4", "0x1"], "file":"a.rb", "line":1, "memsize":40}
    {"address":"0x2", "type":"ARRAY", "references":["0x4", "0x20", "0x30"], "file":"a.rb", "line":2, "memsize":100}
    {"address":"0x3", "type":"STRING", "class":"0xc0", "file":"a.rb", "line":3, "memsize":1000}
    {"address":"0x4", "type":"HASH", "class":"0xc0", "references":["0x6", "0x77"], "file":"a.rb", "line":3, "memsize":200}
    {"address":"0x5", "type":"OBJECT", "class":"0xa5", "file":"b.rb", "line":1, "memsize":40}
    {"address":"0x6", "type":"STRING", "class":"0xc0", "file":"b.rb", "line":2, "memsize":50}
    {"address":"0xa5", "type":"CLASS", "class":"0xc0", "superclass":"0xc0", "real_class_name":"Foo", "singleton":true, "references":["0xc0", "0xa8", "0x5"], "memsize":300}
    {"address":"0xa8", "type":"IMEMO", "class":"0xa5", "imemo_type":"ment", "references":["0xa9"], "memsize":48}
    {"address":"0xa9", "type":"ARRAY", "class":"0xc0", "file":"b.rb", "line":3, "memsize":500}
    {"address":"0xc0", "type":"CLASS", "name":"Foo", "memsize":700}
    {"address":"0x10", "type":"OBJECT", "class":"0xc0", "references":["0x11"], "file":"c.rb", "line":1, "memsize":40}
    {"address":"0x11", "type":"OBJECT", "class":"0xc0", "references":["0x10", "0x3"], "file":"c.rb", "line":1, "memsize":40}
    {"address":"0x13", "type":"STRING", "method":"\\u00ff" broken, "memsize":40}
    {"address":"0x20", "type":"IMEMO", "class":"0x21", "imemo_type":"callcache", "memsize":40}
    {"address":"0x21", "type":"CLASS", "name":"Gone", "memsize":600}
    {"address":"0x30", "type":"IMEMO", "class":"0x31", "imemo_type":"constcache", "memsize":40}
    {"address":"0x31", "type":"STRING", "class":"0xc0", "file":"a.rb", "line":2, "memsize":70}
    {"address":"0x40", "type":"SHAPE", "id":1, "depth":1, "shape_type":"ROOT", "edges":0, "memsize":32}
  NDJSON

  def test_the_reference_on_a_dump_made_by_hand
    Dir.mktmpdir("hc-retention-hand-") do |dir|
      plain = File.join(dir, "hand.ndjson")
      File.write(plain, HAND_MADE)
      gz = File.join(dir, "hand.ndjson.gz")
      Zlib::GzipWriter.open(gz) { |out| out.write(HAND_MADE) }
      [plain, gz].each do |path|
        ref = HeapGraphReference.new(path)
        assert_equal [21, 1, 2, 1, 0], [ref.lines, ref.invalid_lines, ref.missing_references, ref.self_references,
                                        ref.duplicate_addresses], path
        assert_equal %w[vm global_tbl global_list], ref.roots.map(&:kind)
        assert_equal({ "objects" => 14, "memsize" => 3160 }, ref.retained)
        assert_equal({ "objects" => 3, "memsize" => 680 }, ref.garbage)
        assert_equal %w[0x1 0x2 0x3 0x4 0x5 0x6 0xa5 0xa8 0xa9 0xc0 0x20 0x30 0x31 0x40].to_set, ref.reachable
        vm, global_tbl, = ref.roots
        assert_equal({ "0x1" => vm, "0x2" => vm, "0x3" => "0x1", "0x4" => vm, "0x5" => global_tbl, "0x6" => "0x4",
                       "0xa5" => "0x5", "0xa8" => "0xa5", "0xa9" => "0xa8", "0xc0" => :super_root, "0x20" => "0x2",
                       "0x30" => "0x2", "0x31" => "0x30", "0x40" => :super_root },
                     ref.dominators)
        { "0x1" => [1040, 2], "0x2" => [250, 4], "0x4" => [250, 2], "0x5" => [888, 4], "0xa5" => [848, 3],
          "0xc0" => [700, 1], "0x3" => [1000, 1], "0x10" => nil, "0x21" => nil, "0x99" => nil }.each do |address, size|
          size ? assert_equal(size, ref.retained_size(address), address) : assert_nil(ref.retained_size(address), address)
        end
        assert_equal [%w[0x5 0xa5 0xa8 0xa9], "global_tbl", 4],
                     [ref.shortest_path("0xa9"), ref.path_root("0xa9").kind, ref.path_length("0xa9")]
        assert_equal [%w[0x1 0x4 0x6], "vm"], [ref.shortest_path("0x6"), ref.path_root("0x6").kind]
        assert_equal [["0xc0"], "global_list"], [ref.shortest_path("0xc0"), ref.path_root("0xc0").kind]
        assert_nil ref.shortest_path("0x10")
        assert_equal [["0x40"], nil], [ref.shortest_path("0x40"), ref.path_root("0x40")], "a SHAPE hangs off the VM"
        assert_equal({ ["a.rb", 1] => site(1, 40, 1, 40), ["a.rb", 2] => site(2, 170, 2, 170),
                       ["a.rb", 3] => site(2, 1200, 2, 1200), ["b.rb", 1] => site(1, 40, 1, 40),
                       ["b.rb", 2] => site(1, 50, 1, 50), ["b.rb", 3] => site(1, 500, 1, 500),
                       ["c.rb", 1] => site(2, 80, 0, 0) }, ref.by_site)
        assert_equal "Foo", ref.class_name_of("0x5")
        assert_equal %w[0x1 0x3 0x4 0x5 0x6 0xa9 0x10 0x11 0x31], ref.instances_of("Foo")
        assert ref.edge?("0x5", "0xa5"), "an object's class is an edge"
        assert ref.edge?("0x30", "0x31"), "a constcache's \"class\" (its value) is an edge"
        refute ref.edge?("0x20", "0x21"), "a callcache's is not"
        assert_naive_dominators(ref)
      end

      # dump_all's "references" alone: what only the singleton class holds looks like garbage.
      bare = HeapGraphReference.new(plain, class_edges: false)
      assert_equal [{ "objects" => 10, "memsize" => 2242 }, { "objects" => 7, "memsize" => 1598 }], [bare.retained, bare.garbage]
      refute bare.reachable?("0xa9")
      refute bare.reachable?("0x31")
      assert_naive_dominators(bare)
    end
  end

  # heapcapture's own, which report leaves out of what the app holds and gives apart ("own"): by
  # class (0x1, an instance of HeapCapture::Dump::PipeIO; 0x8, of a singleton class of a
  # HeapCapture class), by allocation file (0x2 in lib/heapcapture/, 0xd in lib/heapcapture.rb) and
  # what those alone retain (0x3, 0x4, 0xc1, 0xc3). Not: what the app holds too (0x5), a file or class
  # only named alike (0x7, 0x9), an IMEMO whose "class" is one (0xa), garbage (0xb).
  OWN_MADE = <<~NDJSON
    {"type":"ROOT", "root":"vm", "references":["0x1", "0x2", "0x7", "0xc0"]}
    {"address":"0xc0", "type":"CLASS", "name":"Object", "memsize":100}
    {"address":"0xc1", "type":"CLASS", "name":"HeapCapture::Dump::PipeIO", "memsize":100}
    {"address":"0xc2", "type":"CLASS", "name":"HeapCaptureX", "memsize":100}
    {"address":"0xc3", "type":"CLASS", "class":"0xc0", "singleton":true, "real_class_name":"HeapCapture::Configuration", "memsize":100}
    {"address":"0x1", "type":"FILE", "class":"0xc1", "references":["0x3"], "memsize":1000}
    {"address":"0x3", "type":"STRING", "class":"0xc0", "memsize":5000}
    {"address":"0x2", "type":"ARRAY", "class":"0xc0", "references":["0x4", "0x5"], "file":"/app/lib/heapcapture/capture.rb", "line":3, "memsize":200}
    {"address":"0x4", "type":"STRING", "class":"0xc0", "memsize":40}
    {"address":"0x5", "type":"STRING", "class":"0xc0", "memsize":60}
    {"address":"0x7", "type":"ARRAY", "class":"0xc0", "references":["0x5", "0x8", "0x9", "0xa", "0xd"], "file":"/app/lib/heapcapture_ext.rb", "line":1, "memsize":100}
    {"address":"0x8", "type":"OBJECT", "class":"0xc3", "memsize":40}
    {"address":"0x9", "type":"OBJECT", "class":"0xc2", "memsize":40}
    {"address":"0xa", "type":"IMEMO", "class":"0xc1", "imemo_type":"callcache", "memsize":40}
    {"address":"0xb", "type":"STRING", "class":"0xc0", "file":"/gems/heapcapture-1.0/lib/heapcapture.rb", "line":1, "memsize":30}
    {"address":"0xd", "type":"STRING", "class":"0xc0", "file":"/gems/heapcapture-1.0/lib/heapcapture.rb", "line":2, "memsize":25}
  NDJSON

  def test_own_is_heapcapture_s_objects_and_what_they_alone_retain
    Dir.mktmpdir("hc-retention-own-") do |dir|
      path = File.join(dir, "own.ndjson")
      File.write(path, OWN_MADE)
      ref = HeapGraphReference.new(path)
      assert_equal({ "objects" => 8, "memsize" => 6505 }, ref.own, "worked out by hand")
      out, err, status = heapcapture("report", path, "--json")
      assert status.success?, err
      report = JSON.parse(out)
      assert_equal ref.own, report["own"].slice("objects", "memsize")
      text, err, status = heapcapture("report", path)
      assert status.success?, err
      assert_includes text, "heapcapture's own (counted in retained, kept out of the lists below): 8 objects, 6.4 KiB memsize"
    end
  end

  # --- the reference, against what each fixture knows ----------------------------------------------

  # Every object the fixture's last GC marked (its "marked" flag) is reachable in the model: the
  # GC's own verdict, read from the dump. (a)-(d) dump right after a full GC.
  def test_the_reference_keeps_what_the_gc_marked
    ALL.each do |name|
      d = dump(name)
      ref = d.reference
      marked = 0
      ref.each_record do |r|
        next unless r.data.dig("flags", "marked")

        marked += 1
        assert ref.reachable?(r.address), "#{name}: #{r.address} (#{r.type}) was marked by the GC, yet is not reachable"
      end
      assert_operator marked, :>, 15_000, name
      assert_equal 0, ref.invalid_lines, name
      assert_equal 0, ref.duplicate_addresses, name
      assert_equal 0, ref.garbage["objects"], "#{name}: no garbage right after a full GC" unless name == "garbage"
    end
  end

  # The GC's own verdict, both ways: of a dump made with the GC off, what the reference finds
  # reachable is still there after a full GC (but for the dump's own File and buffer, live while it
  # wrote), and what it finds garbage is gone. The garbage: 200 objects with a singleton class each,
  # whose callcaches (on Ruby 3.1 naming the class as their "class") the VM's global call cache, a
  # "vm" ROOT reference, keeps: the GC does not mark a callcache's klass, so they go.
  def test_the_reference_agrees_with_the_gc
    d = dump("gc_verdict")
    ref = d.reference
    after = signatures(d.path.sub(/\.ndjson\z/, "-after.ndjson"))
    before = signatures(d.path)
    survived = ->(address) { after[address] == before[address] }
    garbage = before.keys.reject { |a| ref.reachable?(a) }
    assert_empty garbage.select(&survived).map { |a| before[a] }.tally, "garbage in the reference, yet the GC kept it"
    collected = ref.reachable.reject(&survived).map { |a| before[a] }
    dump_site = [d.facts["file"], d.facts["dump_line"]]
    assert(collected.all? { |_, file, line| file&.end_with?("objspace.rb") || dump_site == [file, line] },
           "reachable in the reference, yet the GC collected it: #{collected.tally}")
    dropped = garbage.count { |a| before[a][0] == "OBJECT" && before[a][1..2] == [d.facts["file"], d.facts["new_line"]] }
    assert_operator dropped, :>=, 150, "the dropped K objects are garbage (a machine stack may still hold a few)"
    vm = ref.roots.select { |r| r.kind == "vm" }.flat_map(&:references).to_set
    named = []
    ref.each_record do |r|
      next unless r.data["imemo_type"] == "callcache" && r.klass && vm.include?(r.address)

      named << r.klass if ref.record(r.klass)&.data&.[]("singleton") && !ref.reachable?(r.klass)
    end
    return unless RUBY_VERSION < "3.2" # 3.2+ writes no "class" for an IMEMO

    assert_operator named.uniq.size, :>=, 100, "callcaches the VM holds name the dropped singleton classes"
  end

  def test_the_reference_on_singleton_proxies
    d = dump("singleton_proxies")
    ref = d.reference
    facts = d.facts
    proxies = facts["proxies"]
    assert_equal 150, proxies.size
    assert_equal proxies.sort, ref.instances_of("RecordProxy").sort, "the proxies are RecordProxy's instances"
    proxies.each do |p|
      assert ref.reachable?(p)
      assert_equal [p], ref.shortest_path(p), "#{p}: its own global"
      assert_equal "global_tbl", ref.path_root(p).kind
      singleton = ref.record(ref.record(p).klass)
      assert_equal [true, "RecordProxy"], singleton.data.values_at("singleton", "real_class_name"), p
    end
    strings = facts["arrays"].flat_map { |a| ref.record(a).references }
    assert_equal 30_000, strings.uniq.size
    assert(strings.all? { |s| ref.reachable?(s) }, "every record is reachable")
    assert_equal [[facts["file"], facts["string_line"]]], strings.map { |s| ref.record(s).then { |r| [r.file, r.line] } }.uniq
    records_memsize = strings.sum { |s| ref.record(s).memsize }
    assert_operator records_memsize, :>=, 30_000 * 1024

    # Each proxy retains its own records (the last closure's block may be held by the VM too).
    facts["ivar_proxies"].each do |p|
      array = facts["arrays"][proxies.index(p)]
      assert ref.dominates?(p, array), "#{p} dominates its records"
      assert_operator ref.retained_size(p)[0], :>=, 200 * 1024
    end
    closure_held = facts["closure_proxies"].count { |p| ref.dominates?(p, facts["arrays"][proxies.index(p)]) }
    assert_operator closure_held, :>=, 70
    # No object dominates every proxy's records: what holds them all is a ROOT line.
    common = facts["arrays"].map { |a| dominator_chain(ref, a).to_set }.reduce(:&)
    assert_empty common.grep(String), "no single object holds all the records"

    # A record held through a singleton method: its path goes proxy -> its singleton class, an edge
    # that is the proxy's "class" and not in its "references".
    facts["closure_proxies"].first(5).each do |p|
      path = ref.shortest_path(facts["arrays"][proxies.index(p)])
      assert_equal p, path[0]
      assert_equal ref.record(p).klass, path[1]
      refute_includes ref.record(p).references, path[1]
    end
    assert_retained_by_removal(ref, proxies.first(3) + facts["closure_proxies"].first(3) + facts["arrays"].first(3))
  end

  def test_the_reference_on_a_constant_hash
    d = dump("constant_hash")
    ref = d.reference
    hash = d.facts["hash"]
    values = d.facts["values"]
    assert_equal 3_000, values.size
    assert(values.all? { |v| ref.dominates?(hash, v) }, "the Hash dominates its values")
    values_memsize = values.sum { |v| ref.record(v).memsize }
    assert_operator values_memsize, :>=, 3_000 * 1024
    memsize, objects = ref.retained_size(hash)
    assert_operator memsize, :>=, values_memsize + ref.record(hash).memsize
    assert_operator objects, :>=, 3_001
    path = ref.shortest_path(hash)
    assert_equal hash, path.last
    before = ref.record(path[-2])
    # through its module, or (the shortest path Ruby 3.4's dump gives first) through the inline
    # cache of a line that reads RetentionHolder::HOLDER
    assert_includes [%w[MODULE RetentionHolder], %w[IMEMO constcache]],
                    [before.type, before.data["name"] || before.data["imemo_type"]], "the Hash is reached through its module"
    # Its module's constant table holds it, and so does the inline cache of each line that reads
    # RetentionHolder::HOLDER (a constcache: Ruby 3.1 writes its value as its "class"), so the
    # module does not dominate it.
    holders = []
    ref.each_record { |r| holders << [r.type, r.data["imemo_type"]] if ref.edge?(r.address, hash) }
    assert_includes holders, ["MODULE", nil]
    assert_includes holders, %w[IMEMO constcache]
    refute_equal path[-2], ref.idom(hash)
    assert_operator ref.by_site.dig([d.facts["file"], d.facts["value_line"]], "retained_objects"), :>=, 2 * values.size,
                    "the values and the Hash's frozen copies of the keys, made at one line"
    assert_retained_by_removal(ref, [hash, values.first])
  end

  def test_the_reference_on_a_thread_local
    d = dump("thread_local")
    ref = d.reference
    cache = d.facts["cache"]
    strings_memsize = d.facts["strings"].sum { |s| ref.record(s).memsize }
    assert_equal 2_500, d.facts["strings"].size
    assert(d.facts["strings"].all? { |s| ref.dominates?(cache, s) })
    assert_operator ref.retained_size(cache)[0], :>=, strings_memsize
    assert ref.dominates?(d.facts["thread"], cache), "the sleeping thread holds its cache"
    assert_equal "vm", ref.path_root(cache).kind
    assert_includes ref.shortest_path(cache), d.facts["thread"]
    assert_retained_by_removal(ref, [cache, d.facts["thread"]])
  end

  def test_the_reference_on_a_closure
    d = dump("closure")
    ref = d.reference
    array = d.facts["array"]
    lambda = d.facts["lambda"]
    assert ref.dominates?(lambda, array), "the lambda holds the Array it captured"
    assert_operator ref.retained_size(lambda)[0], :>=, d.facts["strings"].sum { |s| ref.record(s).memsize }
    path = ref.shortest_path(array)
    assert_equal [lambda, "global_tbl"], [path.first, ref.path_root(array).kind]
    assert_equal %w[DATA IMEMO ARRAY], path.map { |a| ref.record(a).type }, "lambda -> its env -> the Array"
    assert_retained_by_removal(ref, [array, lambda])
  end

  def test_the_reference_on_garbage_above_the_leak
    d = dump("garbage")
    ref = d.reference
    facts = d.facts
    kept = ref.record(facts["kept"]).references
    assert_equal 2_000, kept.size
    assert(kept.all? { |s| ref.reachable?(s) }, "the kept strings are reachable")
    assert_equal 1_000, facts["buffers"].size
    assert(facts["buffers"].all? { |b| ref.include?(b) && !ref.reachable?(b) }, "the buffers are garbage in the dump")
    buffers_memsize = facts["buffers"].sum { |b| ref.record(b).memsize }
    assert_operator buffers_memsize, :>=, 1_000 * 20_480
    assert_operator ref.garbage["memsize"], :>=, buffers_memsize
    x = ref.by_site.fetch([facts["file"], facts["kept_line"]])
    y = ref.by_site.fetch([facts["file"], facts["dropped_line"]])
    assert_equal [x["objects"], x["memsize"]], [x["retained_objects"], x["retained_memsize"]], "all of line X is kept"
    assert_operator x["retained_memsize"], :>=, 2_000 * 1024
    assert_equal [0, 0], [y["retained_objects"], y["retained_memsize"]], "nothing of line Y is"
    assert_operator y["memsize"], :>=, buffers_memsize
  end

  # --- heapcapture report, against the reference -----------------------------------------------------

  def test_report_json_equals_the_reference
    ALL.each do |name|
      d = dump(name)
      ref = d.reference
      summary = report_json(d)
      assert_equal ref.retained, summary["retained"].slice("objects", "memsize"),
                   "#{name}: retained (the reference follows each object's class, which dump_all leaves out of references)"
      assert_equal ref.garbage, summary["garbage"].slice("objects", "memsize"), "#{name}: garbage"
      assert_sites(name, ref, summary["sites"])
      assert_retainers(name, ref, summary["retainers"])
      assert_suspects(name, ref, summary["suspects"])
    end
  end

  # The dump made by hand (every kind of class reference: an edge, a singleton's, a class missing from
  # the dump, a callcache's weak one; a SHAPE; a broken line), with memsizes that do not fit 4 bytes
  # (an object of 5 GB retained, one of 2^32 - 1 bytes in the garbage): report's totals, sites and
  # retainers as the reference computes them from a plain parse of every line.
  def test_report_of_the_hand_made_dump_with_memsizes_past_4_gib_equals_the_reference
    big = HAND_MADE.sub('"line":3, "memsize":1000}', '"line":3, "memsize":5000000000}')
                   .sub(/("address":"0x10",.*"memsize":)40\}/, '\14294967295}')
    refute_equal HAND_MADE, big
    Dir.mktmpdir("hc-retention-big-") do |dir|
      path = File.join(dir, "big.ndjson")
      File.write(path, big)
      ref = HeapGraphReference.new(path)
      assert_equal [5_000_002_160, 4_294_967_935], [ref.retained["memsize"], ref.garbage["memsize"]], "the fixture"
      out, err, status = heapcapture("report", path, "--json", "--top", "100000")
      assert status.success?, "report: #{err}"
      summary = JSON.parse(out)
      assert_equal ref.retained, summary["retained"].slice("objects", "memsize")
      assert_equal ref.garbage, summary["garbage"].slice("objects", "memsize")
      assert_sites("big", ref, summary["sites"])
      assert_retainers("big", ref, summary["retainers"])
    end
  end

  # On the dump whose garbage the GC then collected (see test_the_reference_agrees_with_the_gc).
  def test_report_garbage_is_what_the_gc_collects
    d = dump("gc_verdict")
    summary = report_json(d)
    assert_equal [d.reference.retained, d.reference.garbage],
                 [summary["retained"].slice("objects", "memsize"), summary["garbage"].slice("objects", "memsize")],
                 "retained and garbage as the GC had them (a callcache's \"class\" is a weak key, not a reference)"
  end

  def test_report_names_the_proxies_class_a_suspect
    d = dump("singleton_proxies")
    suspects = report_json(d)["suspects"]
    found = suspects.find do |s|
      (s["kind"] == "class" && s["class"] == "RecordProxy") ||
        (s["kind"] == "site" && [s["file"], s["line"]] == [d.facts["file"], d.facts["proxy_line"]])
    end
    assert found, "a suspect of kind class RecordProxy (or its site) among " \
                  "#{suspects.map { |s| s.values_at('kind', 'class', 'file', 'line') }}"
    assert_in_delta 150, found["instances"], 15, "about one instance a proxy"
    records_memsize = d.facts["arrays"].sum { |a| d.reference.record(a).references.sum { |s| d.reference.record(s).memsize } }
    assert_operator found["retained_memsize"], :>=, records_memsize * 0.9, "the proxies retain their records"
    assert_operator found["retained_objects"], :>=, 30_000 * 0.9
    assert_kind_of Numeric, found["share"]
    assert_operator found["share"], :>, 0
  end

  def test_report_has_a_suspect_whose_path_ends_at_the_hash
    d = dump("constant_hash")
    suspects = report_json(d)["suspects"]
    found = suspects.find { |s| s["path"]&.last&.dig("address") == d.facts["hash"] }
    assert found, "a suspect whose path ends at the Hash #{d.facts['hash']}"
    assert_operator found["retained_memsize"], :>=, d.reference.retained_size(d.facts["hash"])[0] if found["kind"] == "object"
  end

  def test_report_ranks_the_retained_site_above_the_garbage_one
    d = dump("garbage")
    x = "#{d.facts['file']}:#{d.facts['kept_line']}"
    y = "#{d.facts['file']}:#{d.facts['dropped_line']}"
    out, err, status = heapcapture("report", d.path)
    assert status.success?, err
    assert_includes out, x
    assert_operator out.index(x), :<, out.index(y) || out.size, "line X (kept) before line Y (garbage) in:\n#{out}"

    sites = report_json(d)["sites"]
    at = ->(line) { sites.index { |s| [s["file"], s["line"]] == [d.facts["file"], line] } }
    kept = at.call(d.facts["kept_line"])
    dropped = at.call(d.facts["dropped_line"])
    refute_nil kept, "line X among the sites"
    refute_nil dropped, "line Y among the sites (--top 100000)"
    assert_operator kept, :<, dropped
    assert_equal [0, 0], sites[dropped].values_at("retained_objects", "retained_memsize")
    assert_operator sites[dropped]["memsize"], :>=, 1_000 * 20_480
  end

  # --- the dominator tree's frames (report --folded, and "tree" in its JSON) ------------------------

  # The folded stacks add up to what the roots retain; each frame's value is its self and its
  # children's; the kept Array's frame retains what the reference says it does, and its strings'
  # frame below it takes what the reference says its strings take.
  def test_folded_stacks_add_up_to_the_reference
    d = dump("garbage")
    ref = d.reference
    Dir.mktmpdir("hc-folded-") do |dir|
      folded = File.join(dir, "garbage.folded")
      out, err, status = heapcapture("report", d.path, "--folded", folded, "--json")
      assert status.success?, err
      tree = JSON.parse(out).fetch("tree")
      lines = File.readlines(folded, chomp: true)
      refute_empty lines
      assert(lines.all? { |l| l.match?(/\A[^\n]+ \d+\z/) }, "frame;frame bytes lines: #{lines.first(3)}")
      assert_equal ref.retained["memsize"], lines.sum { |l| Integer(l[/ (\d+)\z/, 1]) }, "the stacks add up to the retained heap"
      assert_equal ref.retained["memsize"], tree["value"]
      assert_frames_add_up(tree)
      kept = find_frame(tree) { |f| f["address"] == d.facts["kept"] }
      refute_nil kept, "the kept Array's frame (it retains the most of its frame)"
      assert_equal 1, kept["instances"]
      assert_equal ref.retained_size(d.facts["kept"]), kept.values_at("value", "objects"), "the Array retains its strings"
      site = "#{d.facts['file']}:#{d.facts['kept_line']}"
      strings = kept["children"].find { |f| f["name"].end_with?("(#{site})") }
      refute_nil strings, "the strings' frame under the Array's: #{kept['children'].map { |f| f['name'] }}"
      held = ref.record(d.facts["kept"]).references.sum { |s| ref.record(s).memsize }
      assert_equal [held, 2_000], strings.values_at("value", "instances")
      line = lines.find { |l| l.sub(/ \d+\z/, "").split(";").last(2) == [kept["name"], strings["name"]] }
      assert_equal held, Integer(line[/ (\d+)\z/, 1]), "its folded line: #{line}"
    end
  end

  def test_folded_bad_input
    d = dump("garbage")
    _, err, status = heapcapture("report", d.path, "--folded", "/nonexistent-dir/x.folded")
    assert_equal 1, status.exitstatus
    assert_match %r{writing the folded stacks to /nonexistent-dir/x.folded: No such file or directory}, err
    assert_equal 1, err.lines.size, err
  end

  def assert_frames_add_up(frame)
    children = frame.fetch("children", [])
    assert_equal frame["value"], frame["self"] + children.sum { |c| c["value"] }, "#{frame['name']}: value = self + children"
    drawn = children.reject { |c| c["other"] }
    drawn.each_cons(2) { |a, b| assert_operator a["value"], :>=, b["value"], "children largest first" }
    assert(children.index { |c| c["other"] }.nil? || children.last["other"], "(other) last")
    children.each { |c| assert_frames_add_up(c) }
  end

  def find_frame(frame, &block)
    return frame if block.call(frame)

    frame.fetch("children", []).each do |c|
      found = find_frame(c, &block)
      return found if found
    end
    nil
  end

  # --- heapcapture path --------------------------------------------------------------------------

  def test_path_is_a_shortest_path
    targets = {
      "singleton_proxies" => lambda { |f|
        f["proxies"].first(2) + f["arrays"].first(2) + [f["arrays"][f["proxies"].index(f["closure_proxies"].first)]]
      },
      "constant_hash" => ->(f) { [f["hash"], f["values"].first] },
      "thread_local" => ->(f) { [f["cache"], f["thread"], f["strings"].first] },
      "closure" => ->(f) { [f["array"], f["lambda"]] },
      "garbage" => ->(f) { [f["kept"]] }
    }
    targets.each do |name, pick|
      d = dump(name)
      pick.call(d.facts).each do |address|
        out, err, status = heapcapture("path", d.path, address, "--json")
        assert status.success?, "#{name} #{address}: #{err}"
        result = JSON.parse(out)
        assert_equal 1, result.size
        assert_equal address, result[0]["target"]
        assert_path(d.reference, address, result[0]["path"], "#{name} #{address}")
      end
    end
  end

  def test_path_text_is_one_line_a_hop_root_first
    d = dump("closure")
    ref = d.reference
    out, err, status = heapcapture("path", d.path, d.facts["array"])
    assert status.success?, err
    lines = out.lines.map(&:chomp).reject(&:empty?)
    hops = ref.path_length(d.facts["array"]) + 1
    lines = lines.drop(1) if lines.size == hops + 1 # a heading line ("0x...: held through 3 objects from a root")
    assert_equal hops, lines.size, "one line a hop:\n#{out}"
    assert(ref.roots.map(&:kind).any? { |kind| lines.first.include?(kind) }, "the first line names the root: #{lines.first}")
    addresses = lines.drop(1).map { |line| line[/0x\h+/] }
    assert_equal d.facts["array"], addresses.last
    assert(addresses.each_cons(2).all? { |from, to| ref.edge?(from, to) }, "one hop a line, each a reference: #{out}")
  end

  def test_path_by_class_gives_up_to_n_instances
    d = dump("singleton_proxies")
    ref = d.reference
    out, err, status = heapcapture("path", d.path, "--class", "RecordProxy", "--all", "3", "--json")
    assert status.success?, err
    result = JSON.parse(out)
    assert_equal 3, result.size
    assert_equal 3, result.map { |r| r["target"] }.uniq.size
    result.each do |r|
      assert_includes d.facts["proxies"], r["target"], "an instance of RecordProxy (through its singleton class)"
      assert_path(ref, r["target"], r["path"], "RecordProxy #{r['target']}")
    end
  end

  def test_path_by_site
    d = dump("constant_hash")
    ref = d.reference
    site = "#{d.facts['file']}:#{d.facts['value_line']}"
    out, err, status = heapcapture("path", d.path, "--site", site, "--json")
    assert status.success?, err
    result = JSON.parse(out)
    refute_empty result
    result.each do |r|
      record = ref.record(r["target"])
      assert_equal [d.facts["file"], d.facts["value_line"]], [record.file, record.line], r["target"]
      assert_path(ref, r["target"], r["path"], "#{site} #{r['target']}")
    end
  end

  # sheap's find_path (breadth first over "references", from the ROOT lines) gives the length
  # heapcapture's path does, where the shortest path needs no class edge: sheap follows
  # "references" only, so it finds no path at all to a record held through a singleton method.
  def test_sheap_gives_the_same_path_length
    begin
      require "sheap"
    rescue LoadError => e
      flunk "sheap is not loadable in this bundle (#{e.message}): it is in the Gemfile's :bench group"
    end
    {
      "singleton_proxies" => lambda { |f|
        f["proxies"].first(2) + f["ivar_proxies"].first(2).map { |p| f["arrays"][f["proxies"].index(p)] }
      },
      "constant_hash" => ->(f) { [f["hash"]] },
      "thread_local" => ->(f) { [f["cache"], f["thread"]] },
      "closure" => ->(f) { [f["array"], f["lambda"]] }
    }.each do |name, pick|
      d = dump(name)
      heap = Sheap::Heap.new(d.path)
      pick.call(d.facts).each do |address|
        found = heap.find_path(heap.at(address))
        refute_nil found, "#{name} #{address}: sheap finds a path"
        assert_equal d.reference.path_length(address) + 1, found.size, "#{name} #{address}: sheap and the reference"
        out, err, status = heapcapture("path", d.path, address, "--json")
        assert status.success?, "#{name} #{address}: #{err}"
        assert_equal found.size, JSON.parse(out)[0]["path"].size, "#{name} #{address}: sheap and heapcapture path"
      end
    end
  end

  def test_path_bad_input_is_one_clear_line_and_exit_1
    d = dump("closure")
    Dir.mktmpdir("hc-retention-bad-") do |dir|
      truncated = File.join(dir, "cut.ndjson.gz")
      Zlib::GzipWriter.open(truncated) { |gz| gz.write(File.binread(d.path)) }
      File.binwrite(truncated, File.binread(truncated)[0, 4096])
      [[["path", d.path, "0xdeadbeef"], "0xdeadbeef"],
       [["path", d.path, "--class", "NoSuchClass"], "NoSuchClass"],
       [["path", truncated, d.facts["array"]], truncated]].each do |args, named|
        out, err, status = heapcapture(*args)
        assert_equal [1, ""], [status.exitstatus, out], "#{args.inspect}: #{err}"
        assert_match(/\Aheapcapture: [^\n]+\n\z/, err, args.inspect)
        assert_includes err, named, args.inspect
      end
    end
  end

  private

  # {address => [type, file, line, generation]} of a dump's objects: the same object in two dumps.
  def signatures(path)
    sigs = {}
    File.foreach(path, mode: "rb") do |line|
      record = JSON.parse(line.force_encoding(Encoding::UTF_8))
      sigs[record["address"]] = record.values_at("type", "file", "line", "generation") if record["address"]
    rescue JSON::ParserError
      next
    end
    sigs
  end

  def site(objects, memsize, retained_objects, retained_memsize)
    { "objects" => objects, "memsize" => memsize, "retained_objects" => retained_objects,
      "retained_memsize" => retained_memsize }
  end

  def heapcapture(*args)
    HCTest::BoundedCommand.run({}, RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", EXE, *args, timeout: CLI_TIMEOUT)
  end

  # report --json of the dump, every site (--top 100000), read once per dump.
  def report_json(dump)
    @reports ||= {}
    @reports[dump.name] ||= begin
      out, err, status = heapcapture("report", dump.path, "--json", "--top", "100000")
      assert status.success?, "report #{dump.name}: #{err}"
      JSON.parse(out)
    end
  end

  # The dominator chain of an address up to the super root: addresses, then Roots, :super_root.
  def dominator_chain(ref, address)
    chain = []
    node = ref.idom(address)
    while node.is_a?(String)
      chain << node
      node = ref.idom(node)
    end
    chain << node
  end

  # Every node's dominators by removal, the definition: d dominates v when v is not reached from
  # the super root once d is taken out. O(n * (n + e)): for small graphs.
  def assert_naive_dominators(ref)
    succ = ref.successors
    reached = (0...ref.node_count).select { |id| ref.reached_node?(id) }
    reached.each do |d|
      next if d.zero?

      without = reach(succ, skip: d)
      dominated = reached.reject { |v| v == d || without[v] }
      by_idom = reached.select { |v| v != d && idom_chain(ref, v).include?(d) }
      assert_equal dominated.sort, by_idom.sort, "what #{ref.node(d).inspect} dominates"
    end
  end

  def idom_chain(ref, id)
    chain = []
    until id.zero?
      id = ref.idom_id(id)
      chain << id
    end
    chain
  end

  def reach(succ, skip:)
    seen = Array.new(succ.size, false)
    seen[0] = true
    stack = [0]
    until stack.empty?
      succ[stack.pop].each do |v|
        next if v == skip || seen[v]

        seen[v] = true
        stack << v
      end
    end
    seen
  end

  # retained_size by the definition: the object and what is no longer reached without it.
  def assert_retained_by_removal(ref, addresses)
    succ = ref.successors
    before = (0...ref.node_count).map { |id| ref.reached_node?(id) }
    addresses.each do |address|
      id = ref.node_id(address)
      without = reach(succ, skip: id)
      freed = (0...ref.node_count).select { |v| before[v] && (v == id || !without[v]) }
      memsize = freed.sum { |v| ref.record(ref.node(v)).memsize }
      assert_equal [memsize, freed.size], ref.retained_size(address), "what #{address} retains"
    end
  end

  # A path heapcapture gives: a ROOT hop, then hops whose addresses are references one to the next
  # (a ROOT line of that kind to the first), ending at the target, as short as the reference's, each
  # hop's fields those of its object.
  def assert_path(ref, target, path, what)
    refute_nil path, what
    assert_equal ref.path_length(target) + 1, path.size,
                 "#{what}: a shortest path is #{ref.path_length(target)} objects after its root " \
                 "(#{ref.shortest_path(target).map { |a| ref.record(a).type }.join(' -> ')}; an object's class " \
                 "is a reference though not in its references)"
    root, *hops = path
    assert_kind_of String, root["root"], "#{what}: the first hop is the root"
    addresses = hops.map { |h| h["address"] }
    assert_equal target, addresses.last, what
    assert ref.root_edge?(root["root"], addresses.first), "#{what}: a #{root['root']} ROOT references #{addresses.first}"
    addresses.each_cons(2) { |from, to| assert ref.edge?(from, to), "#{what}: #{from} references #{to}" }
    hops.each do |hop|
      record = ref.record(hop["address"])
      assert_equal [record.type, record.memsize, record.file, record.line],
                   hop.values_at("type", "memsize", "file", "line"), "#{what}: hop #{hop['address']}"
      assert_equal ref.retained_size(hop["address"])[0], hop["retained_memsize"], "#{what}: hop #{hop['address']}"
    end
  end

  def assert_sites(name, ref, sites)
    refute_empty sites, name
    sites.each do |s|
      want = ref.by_site.fetch([s["file"], s["line"]]) { flunk "#{name}: #{s['file']}:#{s['line']} is no site of the dump" }
      assert_equal want, s.slice("objects", "memsize", "retained_objects", "retained_memsize"),
                   "#{name}: site #{s['file']}:#{s['line']}"
    end
  end

  def assert_retainers(name, ref, retainers)
    refute_empty retainers, name
    assert_equal retainers.sort_by { |r| -r["retained_memsize"] }.map { |r| r["retained_memsize"] },
                 retainers.map { |r| r["retained_memsize"] }, "#{name}: retainers by retained_memsize"
    retainers.each do |r|
      record = ref.record(r["address"])
      refute_nil record, "#{name}: retainer #{r['address']} is in the dump"
      assert_equal ref.retained_size(r["address"]), r.values_at("retained_memsize", "retained_objects"),
                   "#{name}: what #{r['address']} (#{record.type}) retains (a callcache's \"class\" is no edge: " \
                   "the GC does not mark a callcache's klass)"
      assert_equal [record.type, record.memsize, record.file, record.line], r.values_at("type", "memsize", "file", "line"),
                   "#{name}: retainer #{r['address']}"
    end
  end

  def assert_suspects(name, ref, suspects)
    refute_empty suspects, name unless name == "garbage"
    suspects.each do |s|
      assert_includes %w[object class site], s["kind"], name
      next unless s["address"]

      assert_equal s["address"], s["path"].last["address"], "#{name}: a suspect's path ends at it"
      assert_path(ref, s["address"], s["path"], "#{name} suspect #{s['address']}")
      next unless s["kind"] == "object"

      assert_equal ref.retained_size(s["address"]), s.values_at("retained_memsize", "retained_objects"),
                   "#{name}: what suspect #{s['address']} retains"
    end
  end
end
