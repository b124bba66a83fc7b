# frozen_string_literal: true

require "json"
require "set"
require "zlib"

# The retention analysis of an ObjectSpace.dump_all dump, computed the slow obvious way in Ruby:
# the oracle the C analysis (heapcapture report / path) is checked against. Every line goes through
# JSON.parse; a line that does not parse is counted and left out.
#
# The graph:
# - a virtual super root (node 0) whose successors are the ROOT lines, each ROOT line a node of its
#   own (its kind: the line's "root" value, e.g. "vm", "machine_context", "global_tbl"), whose
#   successors are the addresses in its "references";
# - one node per object line (a line with an "address"), whose successors are the addresses in its
#   "references", plus its class (the "class" field) unless class_edges: false. dump_all leaves an
#   object's class out of its "references" (ext/objspace: reachable_object_i skips the object's
#   klass) though the GC marks it (gc.c, gc_mark_children): a singleton class, and all its methods
#   hold, is reachable through its object only that way. Not for FLOAT, BIGNUM and SYMBOL, whose
#   class the GC does not mark (gc_mark_children returns before it). On Ruby 3.1 an IMEMO's "class"
#   is whatever its second word holds, skipped from its "references" the same way, and most of them
#   mark it: an iseq its wrapper (a DATA), an env its iseq, a ment its defined class, a constcache
#   the constant's value, a cref or svar theirs; an edge too. Not a callcache's: its klass is a weak
#   key the GC does not mark (vm_callinfo.h; cleared when the class is freed). Ruby 3.2+ writes no
#   "class" for an IMEMO (ruby/ruby#6925) and lists what it marks in its "references";
# - a SHAPE line (Ruby 3.2+ dump_all writes the object shapes: VM structures, not heap objects) is
#   held by the VM: a successor of the super root, never garbage;
# - a reference to an address that is not in the dump is dropped and counted
#   (missing_references; a class not in the dump: missing_class_references); a reference of an
#   object to itself is left out (self_references).
#
# Reachable: reached from the super root. Dominators: Cooper, Harvey and Kennedy's iterative
# algorithm ("A Simple, Fast Dominance Algorithm", 2001) over the reachable graph rooted at the
# super root. An object's retained size: the memsize and count of its dominator subtree, itself
# included. Shortest paths: breadth first from the super root (the ROOT lines in dump order, then
# each node's successors in dump order; the first to reach a node is its parent).
class HeapGraphReference
  SUPER = 0
  # Types whose "class" the GC does not mark (gc_mark_children returns before marking klass).
  UNMARKED_CLASS_TYPES = %w[FLOAT BIGNUM SYMBOL].freeze
  # IMEMO types whose "class" (Ruby 3.1: the second word) the GC does not mark.
  UNMARKED_CLASS_IMEMOS = %w[callcache].freeze

  # A ROOT line: its kind, its place among the ROOT lines (0-based) and the addresses it references.
  Root = Struct.new(:kind, :index, :references)
  # An object line: what the analysis keeps of it.
  Record = Struct.new(:address, :type, :memsize, :klass, :file, :line, :references, :data)

  # dominator_passes: how many passes Cooper-Harvey-Kennedy took (the last one changing nothing).
  attr_reader :path, :lines, :invalid_lines, :roots, :missing_references, :missing_class_references,
              :self_references, :duplicate_addresses, :class_edges, :edge_count, :dominator_passes, :node_count

  # The keys of an object line kept whole in Record#data (by default); the rest is dropped once read.
  KEEP = %w[name real_class_name superclass singleton imemo_type].freeze

  # keep: the keys of each object line to keep in Record#data (e.g. KEEP + ["flags"]).
  def initialize(path, class_edges: true, keep: KEEP)
    @path = path
    @class_edges = class_edges
    @keep = KEEP | keep
    @lines = 0
    @invalid_lines = 0
    @roots = []
    @records = []
    @index = {} # address => node id
    @missing_references = 0
    @missing_class_references = 0
    @self_references = 0
    @duplicate_addresses = 0
    read
    build_graph
    compute_reachable
    compute_dominators
    compute_retained_sizes
  end

  # --- the records -------------------------------------------------------------------------------

  def object_count = @records.size

  def record(address)
    id = @index[address] or return nil
    @records[id - first_object]
  end

  def include?(address) = @index.key?(address)

  def each_record(&) = @records.each(&)

  # --- reachability ------------------------------------------------------------------------------

  # The addresses of the objects reached from the super root.
  def reachable
    @reachable ||= @records.each_with_index.filter_map { |r, i| r.address if @reached[first_object + i] }.to_set
  end

  def reachable?(address)
    id = @index[address]
    id ? @reached[id] : false
  end

  # {"objects" => n, "memsize" => sum} over the reachable objects.
  def retained = tally { |id| @reached[id] }

  # The same over the objects that are not reachable: garbage a GC would free.
  def garbage = tally { |id| !@reached[id] }

  # The same over heapcapture's own reachable objects, which the analysis leaves out of what the app
  # holds: an object allocated in a file of heapcapture's lib/ (any type), an instance of a class
  # named HeapCapture or HeapCapture::* (the name of the CLASS or MODULE its "class" points to, or
  # that singleton class's "real_class_name"; an IMEMO is no instance), and every object only such
  # an object retains (one it dominates).
  def own
    memo = {}
    tally { |id| @reached[id] && own_node?(id, memo) }
  end

  OWN_FILE = %r{/lib/heapcapture/|/lib/heapcapture\.rb\z}
  OWN_CLASS = /\AHeapCapture(?:::|\z)/

  # --- dominators --------------------------------------------------------------------------------

  # {address => its immediate dominator} for every reachable object: an address, a Root (the
  # object is dominated by that ROOT line only) or :super_root (by more than one ROOT line).
  def dominators
    @dominators ||= reachable_object_ids.to_h { |id| [@records[id - first_object].address, node_name(@idom[id])] }
  end

  def idom(address)
    id = @index[address]
    id && @reached[id] ? node_name(@idom[id]) : nil
  end

  # [memsize, objects] of the object's dominator subtree, itself included; nil when the object is
  # not reachable (or not in the dump).
  def retained_size(address)
    id = @index[address]
    return nil unless id && @reached[id]

    [@subtree_memsize[id], @subtree_objects[id]]
  end

  # [memsize, objects] a ROOT line (by its index among the ROOT lines) dominates, itself excluded.
  def root_retained_size(index) = [@subtree_memsize[1 + index], @subtree_objects[1 + index]]

  # Whether dominator dominates address (each object dominates itself).
  def dominates?(dominator, address)
    d = @index[dominator]
    id = @index[address]
    return false unless d && id && @reached[d] && @reached[id]

    id = @idom[id] until id == d || id == SUPER
    id == d
  end

  # --- shortest paths ----------------------------------------------------------------------------

  # The addresses from the first object after a ROOT line to the target, both included (a root's
  # own reference: one address); nil when the target is not reachable. (A SHAPE hangs off the
  # super root itself: its path is itself, its path_root nil.)
  def shortest_path(address)
    id = @index[address]
    return nil unless id && @reached[id]

    bfs
    path = []
    while id > @roots.size
      path << @records[id - first_object].address
      id = @bfs_parent[id]
    end
    path.reverse
  end

  # The ROOT line the shortest path starts at (a Root), nil when unreachable.
  def path_root(address)
    id = @index[address]
    return nil unless id && @reached[id]

    bfs
    id = @bfs_parent[id] while id > @roots.size
    id == SUPER ? nil : @roots[id - 1]
  end

  # Objects on the shortest path (the ROOT line not counted): heapcapture path prints one hop more.
  def path_length(address) = shortest_path(address)&.size

  # --- the edges, for checking a path the product gives ------------------------------------------

  # Whether the dump has the reference from -> to: in from's "references", or from's class (when
  # the GC marks it: see the top of this file).
  def edge?(from, to)
    r = record(from) or return false
    r.references.include?(to) || (marks_class?(r) && r.klass == to)
  end

  # Whether a ROOT line of that kind references the address.
  def root_edge?(kind, address) = @roots.any? { |root| root.kind == kind && root.references.include?(address) }

  # --- classes -----------------------------------------------------------------------------------

  # The name of the class an object is an instance of: through a singleton class to the class it
  # is the singleton of ("real_class_name", or its superclass chain past ICLASSes); nil if unnamed.
  def class_name_of(address)
    r = record(address) or return nil
    klass = record(r.klass) if r.klass
    8.times do
      return nil unless klass
      return klass.data["real_class_name"] if klass.data["real_class_name"]
      return klass.data["name"] if klass.type == "CLASS" && !klass.data["singleton"] && klass.data["name"]

      klass = klass.data["superclass"] && record(klass.data["superclass"])
    end
    nil
  end

  # Types that are no instance of the class in their "class" field: internal objects (an IMEMO's
  # "class" is the class a cache is for) and classes and modules (their "class" is a metaclass).
  NOT_INSTANCES = %w[IMEMO CLASS MODULE ICLASS].freeze

  # The addresses of the objects that are instances of the class named name (class_name_of).
  def instances_of(name)
    @records.filter_map do |r|
      r.address if r.klass && !NOT_INSTANCES.include?(r.type) && class_name_of(r.address) == name
    end
  end

  # --- sites -------------------------------------------------------------------------------------

  # {[file, line] => {"objects", "memsize", "retained_objects", "retained_memsize"}} over the objects
  # that carry a "file" (line 0 when they carry no integer "line"); retained_*: reachable ones only.
  def by_site
    @by_site ||= begin
      sites = {}
      @records.each_with_index do |r, i|
        next unless r.file

        site = sites[[r.file, r.line]] ||= { "objects" => 0, "memsize" => 0, "retained_objects" => 0, "retained_memsize" => 0 }
        site["objects"] += 1
        site["memsize"] += r.memsize
        next unless @reached[first_object + i]

        site["retained_objects"] += 1
        site["retained_memsize"] += r.memsize
      end
      sites
    end
  end

  private

  def first_object = 1 + @roots.size

  def marks_class?(record)
    return false unless @class_edges && record.klass && !UNMARKED_CLASS_TYPES.include?(record.type)

    record.type != "IMEMO" || !UNMARKED_CLASS_IMEMOS.include?(record.data["imemo_type"])
  end

  def node_name(id)
    return :super_root if id == SUPER
    return @roots[id - 1] if id <= @roots.size

    @records[id - first_object].address
  end

  def reachable_object_ids = (first_object...(first_object + @records.size)).select { |id| @reached[id] }

  # Up the dominator tree from id to the first node already known (or a ROOT line), then down again:
  # a node is own when it is so itself or its immediate dominator is.
  def own_node?(id, memo)
    chain = []
    node = id
    while node >= first_object && !memo.key?(node)
      chain << node
      node = @idom[node]
    end
    own = node >= first_object && memo[node]
    chain.reverse_each { |n| memo[n] = own ||= own_itself?(@records[n - first_object]) }
    memo[id]
  end

  def own_itself?(record)
    return true if record.file&.match?(OWN_FILE)
    return false if record.type == "IMEMO" || !record.klass

    klass = record(record.klass) or return false
    name = klass.data["name"] if %w[CLASS MODULE].include?(klass.type)
    name ||= klass.data["real_class_name"] if klass.data["singleton"]
    name.is_a?(String) && name.match?(OWN_CLASS)
  end

  def tally
    t = { "objects" => 0, "memsize" => 0 }
    @records.each_with_index do |r, i|
      next unless yield(first_object + i)

      t["objects"] += 1
      t["memsize"] += r.memsize
    end
    t
  end

  # Every line through JSON.parse; ROOT lines and object lines kept, in dump order.
  def read
    objects = []
    each_line do |line|
      line = line.chomp
      next if line.empty?

      @lines += 1
      data = begin
        JSON.parse(line.force_encoding(Encoding::UTF_8))
      rescue JSON::ParserError
        nil
      end
      next @invalid_lines += 1 unless data.is_a?(Hash)

      if data["type"] == "ROOT"
        refs = data["references"].is_a?(Array) ? data["references"] : []
        @roots << Root.new(data["root"].to_s, @roots.size, refs)
      elsif data["address"].is_a?(String)
        objects << data
      end
    end
    objects.each { |data| add_record(data) }
  end

  def add_record(data)
    address = data["address"]
    if @index.key?(address)
      @duplicate_addresses += 1 # the first line of an address stands; a later one is left out
      return
    end
    @index[address] = first_object + @records.size
    memsize = data["memsize"].is_a?(Integer) ? data["memsize"] : 0
    refs = data["references"].is_a?(Array) ? data["references"] : []
    file = data["file"].is_a?(String) ? data["file"] : nil
    line = data["line"].is_a?(Integer) ? data["line"] : 0
    klass = data["class"].is_a?(String) ? data["class"] : nil
    @records << Record.new(address, data["type"].to_s, memsize, klass, file, file && line, refs,
                           data.slice(*@keep))
  end

  def each_line(&block)
    if gzip?
      Zlib::GzipReader.open(@path) { |gz| gz.each_line { |line| block.call(line.b) } }
    else
      File.foreach(@path, mode: "rb", &block)
    end
  end

  def gzip? = File.binread(@path, 2) == "\x1f\x8b".b

  # Successor lists by node id: 0 the super root, 1..R the ROOT lines, then the objects.
  def build_graph
    @node_count = first_object + @records.size
    @succ = Array.new(@node_count)
    shapes = @records.each_index.select { |i| @records[i].type == "SHAPE" }.map { |i| first_object + i }
    @succ[SUPER] = (1..@roots.size).to_a + shapes
    @roots.each_with_index { |root, i| @succ[1 + i] = resolve(root.references, nil) }
    @records.each_with_index do |r, i|
      id = first_object + i
      out = resolve(r.references, r.address)
      if marks_class?(r) && r.klass != r.address
        k = @index[r.klass]
        k ? out << k : @missing_class_references += 1
      end
      @succ[id] = out.uniq
    end
    @edge_count = @succ.sum(&:size)
  end

  def resolve(addresses, own)
    ids = []
    addresses.each do |a|
      if a == own
        @self_references += 1
      elsif (id = @index[a])
        ids << id
      else
        @missing_references += 1
      end
    end
    ids.uniq
  end

  # Depth-first from the super root, iteratively: which nodes are reached, and their postorder.
  def compute_reachable
    @reached = Array.new(@node_count, false)
    @postorder = Array.new(@node_count) # node id => postorder number
    order = [] # node ids in postorder
    stack = [[SUPER, 0]]
    @reached[SUPER] = true
    until stack.empty?
      frame = stack.last
      node, i = frame
      succ = @succ[node]
      if i < succ.size
        frame[1] = i + 1
        child = succ[i]
        next if @reached[child]

        @reached[child] = true
        stack << [child, 0]
      else
        stack.pop
        @postorder[node] = order.size
        order << node
      end
    end
    @order = order
  end

  # Cooper, Harvey and Kennedy: idom by iterating over the nodes in reverse postorder, each one's
  # new idom the intersection (walking up the current dominator tree by postorder number) of its
  # processed predecessors, until nothing changes.
  def compute_dominators
    preds = Array.new(@node_count) { [] }
    @order.each { |u| @succ[u].each { |v| preds[v] << u } } # @order holds only reached nodes
    @idom = Array.new(@node_count)
    @idom[SUPER] = SUPER
    rpo = @order.reverse
    changed = true
    @dominator_passes = 0
    while changed
      changed = false
      @dominator_passes += 1
      rpo.each do |b|
        next if b == SUPER

        new_idom = nil
        preds[b].each do |p|
          next unless @idom[p]

          new_idom = new_idom.nil? ? p : intersect(p, new_idom)
        end
        next if @idom[b] == new_idom

        @idom[b] = new_idom
        changed = true
      end
    end
  end

  def intersect(finger1, finger2)
    until finger1 == finger2
      finger1 = @idom[finger1] while @postorder[finger1] < @postorder[finger2]
      finger2 = @idom[finger2] while @postorder[finger2] < @postorder[finger1]
    end
    finger1
  end

  # Each node's memsize and count added to its idom's, in postorder (an idom is a DFS-tree ancestor:
  # it comes after the nodes it dominates).
  def compute_retained_sizes
    @subtree_memsize = Array.new(@node_count, 0)
    @subtree_objects = Array.new(@node_count, 0)
    @records.each_with_index do |r, i|
      @subtree_memsize[first_object + i] = r.memsize
      @subtree_objects[first_object + i] = 1
    end
    @order.each do |v|
      next if v == SUPER

      @subtree_memsize[@idom[v]] += @subtree_memsize[v]
      @subtree_objects[@idom[v]] += @subtree_objects[v]
    end
  end

  # Breadth first from the super root: each reached node's parent and depth (a ROOT line: 1).
  def bfs
    return if @bfs_parent

    @bfs_parent = Array.new(@node_count)
    @bfs_depth = Array.new(@node_count)
    @bfs_depth[SUPER] = 0
    queue = [SUPER]
    head = 0
    while head < queue.size
      u = queue[head]
      head += 1
      @succ[u].each do |v|
        next if @bfs_depth[v]

        @bfs_depth[v] = @bfs_depth[u] + 1
        @bfs_parent[v] = u
        queue << v
      end
    end
  end

  public

  # The object ids' graph, for a test's own check of the dominators: successors by node id,
  # the node id of an address, and the address (or Root, or :super_root) of a node id.
  def successors = @succ
  def node_id(address) = @index[address]
  def node(id) = node_name(id)
  def reached_node?(id) = @reached[id]
  def idom_id(id) = @idom[id]
end
