# frozen_string_literal: true

require "test_helper"
require "tsort"

# Who calls whom among the extension's C files, read from the object files of this Ruby's build
# (nm: each file's defined and undefined symbols): no circle, so each file can be read after the
# ones it calls. Init_heapcapture's file calls every binding and no file calls it.
class CGraphTest < HCTest::TestCase
  ROOT = File.expand_path("..", __dir__)

  # {file => [the symbols it defines, those it uses from elsewhere]}, by base name ("rb_dump").
  def self.symbols(objects)
    out = IO.popen(["nm", "-A", *objects], &:read) # one line a symbol: "path.o:[address] type name"
    raise "nm failed on the object files (is binutils installed?)" unless $?.success?

    table = objects.to_h { |obj| [File.basename(obj, ".o"), [[], []]] }
    out.each_line do |line|
      path, rest = line.split(":", 2)
      fields = rest.split
      defined, used = table.fetch(File.basename(path, ".o"))
      if fields.size == 2 && fields[0] == "U" then used << fields[1]
      elsif fields.size == 3 && fields[1].match?(/\A[TDBRC]\z/) then defined << fields[2]
      end
    end
    table
  end

  # {file => [files whose functions or data it uses]}.
  def self.graph(symbols)
    defined_in = symbols.flat_map { |name, (defined, _)| defined.map { |s| [s, name] } }.to_h
    symbols.to_h { |name, (_, used)| [name, used.filter_map { |s| defined_in[s] }.uniq - [name]] }
  end

  # The strongly connected parts of more than one file: the circles.
  def self.circles(graph)
    each_node = ->(&b) { graph.each_key(&b) }
    each_child = ->(node, &b) { graph.fetch(node, []).each(&b) }
    TSort.strongly_connected_components(each_node, each_child).select { |c| c.size > 1 }
  end

  # This build's symbols, read once for the tests below.
  def build_symbols
    @@build_symbols ||= self.class.symbols(objects) # rubocop:disable Style/ClassVars
  end

  def objects
    sources = Dir[File.join(ROOT, "ext/heapcapture/*.c")].map { |f| File.basename(f, ".c") }.sort
    dirs = Dir[File.join(ROOT, "tmp", "*", "heapcapture", RUBY_VERSION)]
    assert_equal 1, dirs.size, "the build directory of Ruby #{RUBY_VERSION} under tmp/ (run rake compile first): #{dirs}"
    objs = Dir[File.join(dirs.first, "*.o")]
    assert_equal sources, objs.map { |o| File.basename(o, ".o") }.sort,
                 "the build's object files are not those of ext/heapcapture's C files (a stale build: rake compile)"
    objs
  end

  def test_no_circle_among_the_c_files
    graph = self.class.graph(build_symbols)
    assert_operator graph.values.sum(&:size), :>, 50, "too few calls between files: nm was not read right"
    circles = self.class.circles(graph)
    assert_empty circles, "files that call each other round in a circle: #{circles.map { |c| c.sort.join(' <-> ') }}"
  end

  def test_the_entry_inits_every_binding_and_nobody_calls_it
    symbols = build_symbols
    graph = self.class.graph(symbols)
    with_init = symbols.select { |_, (defined, _)| defined.any? { |s| s.start_with?("hc_init_") } }.keys
    assert_operator with_init.size, :>=, 10, "too few files define an hc_init_ function: nm was not read right"
    assert_empty with_init - graph.fetch("heapcapture"), "files with an init that Init_heapcapture does not call"
    callers = graph.select { |_, callees| callees.include?("heapcapture") }.keys
    assert_empty callers, "files that call into heapcapture.c"
  end

  # The check itself: a made-up circle is found, a chain is not.
  def test_the_check_finds_a_circle
    assert_equal [%w[a b c]], self.class.circles({ "a" => ["b"], "b" => ["c"], "c" => ["a"], "d" => ["a"] }).map(&:sort)
    assert_empty self.class.circles({ "a" => ["b"], "b" => ["c"], "c" => [] })
  end
end
