# frozen_string_literal: true

module HeapCapture
  class CLI
    # Byte counts as people read them: "12.3 MiB (12897345 bytes)".
    module Size
      UNITS = %w[bytes KiB MiB GiB TiB].freeze

      module_function

      def human(bytes)
        return "#{bytes} bytes" if bytes < 1024

        exponent = [(Math.log(bytes) / Math.log(1024)).floor, UNITS.size - 1].min
        format("%.1f %s", bytes.to_f / (1024**exponent), UNITS[exponent])
      end

      def both(bytes) = bytes < 1024 ? human(bytes) : "#{human(bytes)}, #{bytes} bytes"
    end
  end
end
