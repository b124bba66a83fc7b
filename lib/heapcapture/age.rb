# frozen_string_literal: true

module HeapCapture
  # Dumps encrypted at rest in the age format (ext/heapcapture/age.c; the C binding defines
  # Age.recipient, .identities, .encrypt, .decrypt and AVAILABLE). A capturing process holds only
  # the recipients (encrypt_to: public keys, "age1..."); those who read dumps hold an identity
  # (HEAPCAPTURE_IDENTITY: the path of an age identity file, as age-keygen writes it).
  module Age
    SUFFIX = ".age" # appended to the key of every object stored encrypted
    # The first bytes of an age file, and of one ASCII-armored (age -a), which is refused with the reason.
    MAGIC = ["age-encryption.org/", "-----BEGIN AGE ENCRYPTED FILE-----"].freeze
    IDENTITY = "HEAPCAPTURE_IDENTITY"
    MISSING = "this build of heapcapture has no libsodium, which age encryption needs: install libsodium-dev " \
              "(Homebrew: libsodium) and reinstall the gem"

    module_function

    # encrypt_to's value (nil, "age1...,age1..." or an Array of them) as the recipients' texts, each
    # checked by the C parser; nil when none is given. ConfigurationError naming the one that is not
    # a recipient, and why (a secret key given by mistake is never quoted).
    def recipients!(value, name)
      list = (value.is_a?(Array) ? value : value.to_s.split(",")).map { |r| r.to_s.strip }.reject(&:empty?)
      return nil if list.empty?
      raise ConfigurationError, "#{name} is set, but #{MISSING}" unless AVAILABLE

      list.each_with_index.map do |text, i|
        recipient(text)
      rescue ArgumentError => e
        shown = text.match?(/\Aage1/i) ? " (#{text[0, 70].inspect})" : ""
        raise ConfigurationError, "#{name}: recipient #{i + 1} of #{list.size}#{shown} is not usable: " \
                                  "#{e.message}; give age X25519 public keys (age1..., age-keygen -y prints one), " \
                                  "comma-separated"
      end
    end

    # Whether the file at path is an age file (by its first bytes).
    def encrypted?(path)
      head = File.open(path, "rb") { |f| f.read(MAGIC.map(&:size).max) }.to_s
      MAGIC.any? { |magic| head.start_with?(magic) }
    rescue SystemCallError
      false # the reader says why it cannot read it
    end

    # The text of the identity file HEAPCAPTURE_IDENTITY names, checked; what is the label of the
    # encrypted dump (or summary) that needs it. Error in one line when it is not set or not usable.
    def identity!(what, env = ENV)
      path = env[IDENTITY].to_s.strip
      if path.empty?
        raise Error, "#{what} is age-encrypted; set #{IDENTITY} to the path of an age identity file " \
                     "(age-keygen makes one) to read it"
      end
      text = File.read(path, mode: "rb")
      identities(text)
      text
    rescue SystemCallError => e
      raise Error, "#{IDENTITY} is #{path}, which cannot be read (#{e.message.sub(/ @ \w+ - .*/, '')}); " \
                   "set it to the path of an age identity file (age-keygen makes one)"
    rescue ArgumentError => e
      raise Error, "#{IDENTITY} is #{path}: #{e.message}"
    end
  end
end
