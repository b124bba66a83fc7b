# frozen_string_literal: true

module HeapCapture
  # The memory limit of this process's cgroup and what the cgroup uses now, read from the kernel's
  # files (cgroup v2, else v1's memory controller): what a dyno or a container is allowed. A limit
  # set on an enclosing group counts too; the smallest wins. The use leaves out the page cache that
  # the kernel can drop at once (inactive_file), as the kernel's own OOM accounting can.
  module Cgroup
    UNLIMITED = 1 << 60 # v1 writes 9223372036854771712 for "no limit"
    Memory = Struct.new(:limit, :used, :source, keyword_init: true)

    module_function

    # Memory(limit:, used:, source:) or nil when no limit is set or the files cannot be read.
    def memory(proc_dir: "/proc/self")
      mounts = mount_points(read("#{proc_dir}/mountinfo"))
      groups = read("#{proc_dir}/cgroup").to_s.lines.map { |line| line.chomp.split(":", 3) }
      v2_memory(mounts, groups) || v1_memory(mounts, groups)
    end

    # {v2: "/sys/fs/cgroup", v1_memory: "/sys/fs/cgroup/memory"} from /proc/self/mountinfo's lines
    # ("... <mount point> <options> - <fs type> <source> <super options>").
    def mount_points(mountinfo)
      mountinfo.to_s.each_line.with_object({}) do |line, found|
        fields, super_fields = line.split(" - ", 2)
        next unless super_fields

        point = fields.split[4]
        type, _source, options = super_fields.split
        found[:v2] ||= point if type == "cgroup2"
        found[:v1_memory] ||= point if type == "cgroup" && options.to_s.split(",").include?("memory")
      end
    end

    def v2_memory(mounts, groups)
      root = mounts[:v2] or return nil
      path = groups.find { |id, controllers, _| id == "0" && controllers.to_s.empty? }&.last or return nil
      dir = group_dir(root, path, "memory.max") or return nil
      limit, at = v2_smallest_limit(root, dir)
      return nil unless limit

      used = number(read("#{at}/memory.current")) or return nil
      inactive = stat(read("#{at}/memory.stat"), "inactive_file") || 0
      Memory.new(limit: limit, used: [used - inactive, 0].max, source: "cgroup v2 #{at}/memory.max")
    end

    # [limit, dir] of the smallest memory.max of the group and each one that holds it, up to the
    # mount's root; nil when none sets one.
    def v2_smallest_limit(root, dir)
      best = nil
      loop do
        limit = number(read("#{dir}/memory.max"))
        best = [limit, dir] if limit && limit < UNLIMITED && (best.nil? || limit < best[0])
        break if dir == root || dir.length <= root.length

        dir = File.dirname(dir)
      end
      best
    end

    def v1_memory(mounts, groups)
      root = mounts[:v1_memory] or return nil
      path = groups.find { |_, controllers, _| controllers.to_s.split(",").include?("memory") }&.last or return nil
      dir = group_dir(root, path, "memory.usage_in_bytes") or return nil
      stats = read("#{dir}/memory.stat")
      limit = stat(stats, "hierarchical_memory_limit") || number(read("#{dir}/memory.limit_in_bytes"))
      return nil unless limit && limit < UNLIMITED

      used = number(read("#{dir}/memory.usage_in_bytes")) or return nil
      inactive = stat(stats, "total_inactive_file") || 0
      Memory.new(limit: limit, used: [used - inactive, 0].max, source: "cgroup v1 #{dir}/memory.limit_in_bytes")
    end

    # The group's directory: the mount point plus its path, or, in a container that sees its own
    # group as the root, the mount point itself.
    def group_dir(root, path, probe)
      [File.join(root, path), root].uniq.find { |dir| File.file?(File.join(dir, probe)) }
    end

    def stat(text, key)
      number(text.to_s[/^#{key} (\d+)$/, 1])
    end

    def number(text)
      text&.strip&.match?(/\A\d+\z/) ? Integer(text.strip, 10) : nil
    end

    def read(path)
      File.read(path, mode: "rb")
    rescue SystemCallError, IOError
      nil
    end
  end
end
