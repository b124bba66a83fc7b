# frozen_string_literal: true

module HeapCapture
  # The dominator tree's frames a report carries ("tree": heap_flame.h, from Summary.of_file(tree:))
  # written as folded stacks: one "frame;frame;frame bytes" line for each frame with bytes of its own
  # (its self: what its objects take, and what is left undrawn below them), the format
  # flamegraph.pl, inferno and speedscope read. A frame's name is its class (or type) and site; the
  # top "(all)" frame is left out: each stack begins at a ROOT record, or an object several reach.
  module FlameTree
    module_function

    # The folded lines of tree (a Hash as the report's JSON has it), largest frames first.
    def folded(tree)
      lines = []
      stack = tree.fetch("children", []).reverse.map { |child| [child, []] }
      until stack.empty?
        node, above = stack.pop
        names = above + [frame_name(node)]
        lines << "#{names.join(';')} #{node['self']}" if node["self"].positive?
        node.fetch("children", []).reverse_each { |child| stack << [child, names] }
      end
      lines
    end

    # A name the folded format can hold: no ";" (it separates frames) and no line break.
    def frame_name(node)
      node["name"].tr(";", ":").gsub(/[\r\n]/, " ")
    end
  end
end
