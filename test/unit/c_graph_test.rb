# frozen_string_literal: true

require "test_helper"

# Who calls whom among the extension's C files, read from the object files of this Ruby's build
# (nm: each file's defined and undefined symbols): no circle, so each file can be read after the
# ones it calls. Init_heapcapture's file calls every binding and no file calls it; what a file
# exports, another file (or a C test) uses.
class CGraphTest < HCTest::TestCase
  ROOT = HCTest::ROOT

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

  # The strongly connected parts of more than one file: the circles (Tarjan's algorithm; the graph
  # is a few dozen files, so recursion is fine).
  def self.circles(graph)
    index = {}
    low = {}
    stack = []
    found = []
    visit = lambda do |node|
      index[node] = low[node] = index.size
      stack.push(node)
      graph.fetch(node, []).each do |callee|
        if !index.key?(callee)
          visit.call(callee)
          low[node] = [low[node], low[callee]].min
        elsif stack.include?(callee)
          low[node] = [low[node], index[callee]].min
        end
      end
      next unless low[node] == index[node]

      part = []
      part << stack.pop until part.last == node
      found << part if part.size > 1
    end
    graph.each_key { |node| visit.call(node) unless index.key?(node) }
    found
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
    inits = symbols.values.flat_map { |defined, _| defined.grep(/\Ahc_init_/) }
    assert_operator inits.size, :>=, 10, "too few hc_init_ functions: nm was not read right"
    assert_empty inits - symbols.fetch("heapcapture")[1], "inits that Init_heapcapture does not call"
    callers = self.class.graph(symbols).select { |_, callees| callees.include?("heapcapture") }.keys
    assert_empty callers, "files that call into heapcapture.c"
  end

  # What a file exports is what another file uses: a function or variable no other object file
  # uses and no C test program or fuzzer names should be static (Init_heapcapture aside: Ruby calls it).
  def test_every_exported_symbol_is_used_outside_its_file
    symbols = build_symbols
    used = symbols.flat_map { |name, (_, uses)| uses.map { |s| [s, name] } }.group_by(&:first)
    # what the C tests call, their comments left out
    tests = Dir[File.join(ROOT, "test/c/*.c")].map { |f| File.read(f, encoding: "UTF-8") }.join("\n")
                                              .gsub(%r{/\*.*?\*/|//[^\n]*}m, " ")
    lonely = symbols.flat_map do |name, (defined, _)|
      defined.reject { |s| s == "Init_heapcapture" || (used.fetch(s, []).map(&:last) - [name]).any? || tests.match?(/\b#{s}\b/) }
             .map { |s| "#{name}.c: #{s}" }
    end
    assert_operator symbols.values.sum { |defined, _| defined.size }, :>, 200, "too few symbols: nm was not read right"
    assert_empty lonely, "exported but used in their own file only: make them static"
  end

  # The check itself: a made-up circle is found, a chain is not.
  def test_the_check_finds_a_circle
    assert_equal [%w[a b c]], self.class.circles({ "a" => ["b"], "b" => ["c"], "c" => ["a"], "d" => ["a"] }).map(&:sort)
    assert_empty self.class.circles({ "a" => ["b"], "b" => ["c"], "c" => [] })
  end
end
